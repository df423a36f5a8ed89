// `tunsteer down`: undo what a dead gateway left behind, from its state dir:
// its data plane if it outlived it, then everything its journal records.
import { readFileSync, rmSync } from 'node:fs';
import { ownerAlive, processStartTime, readJournal } from '../routing/route-journal.js';
import { restoreFromJournal, type RestoreReport } from '../routing/restore.js';
import { readStatus, statusPath } from './state/status-file.js';

/** Throws when the restore is refused (a live gateway owns the journal) or fails. */
export function restoreLeftovers(stateDir: string, log: (line: string) => void): RestoreReport {
  endOrphanedDataPlane(stateDir);
  const r = restoreFromJournal(stateDir, { log });
  rmSync(statusPath(stateDir), { force: true });
  return r;
}

/**
 * A supervisor killed with -9 leaves its data plane to notice the broken IPC
 * channel and go; until it has, it holds the TUN open. `down` does not wait
 * on that: the data plane the status file names goes first, if it is still
 * one of ours (its command line says so, not a reused pid).
 */
function endOrphanedDataPlane(stateDir: string): void {
  const j = readJournal(stateDir);
  if (j && ownerAlive(j)) return; // restore refuses anyway, and says why
  const pid = readStatus(stateDir)?.dataPlane?.pid;
  if (!pid) return;
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('__data-plane')) return;
    process.kill(pid, 'SIGKILL');
  } catch {
    return; // gone already
  }
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 200 && processStartTime(pid) !== undefined && !zombie(pid); i++) Atomics.wait(sleeper, 0, 0, 10);
}

function zombie(pid: number): boolean {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/s, ')'));
  } catch {
    return true;
  }
}
