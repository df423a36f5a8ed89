// `tunsteer status` and `tunsteer down`: read the state dir a gateway keeps.
import { readFileSync, rmSync } from 'node:fs';
import type { DownArgs, StatusArgs } from '../args.js';
import { currentNetns, describeNetns, ownerAlive, processStartTime, readJournal, sameNetns } from '../../routing/route-journal.js';
import { renderPlan } from '../../routing/route-plan.js';
import { restoreFromJournal } from '../../routing/restore.js';
import { readStatus, statusPath } from '../../gateway/state/status-file.js';

export function runStatus(args: StatusArgs): number {
  const j = readJournal(args.stateDir);
  const live = readStatus(args.stateDir);
  const alive = j !== null && ownerAlive(j);
  // up: routes in place and the data plane publishing (the supervisor writes its status)
  const up = alive && j.upAt !== undefined && live !== null && live.pid === j.pid;
  if (args.json) {
    process.stdout.write(JSON.stringify({ running: up, journal: j, status: live }, null, 2) + '\n');
    return up ? 0 : 1;
  }
  if (!j) {
    process.stdout.write(`no gateway runs with state dir ${args.stateDir}\n`);
    return 1;
  }
  if (!alive) {
    process.stdout.write(`gateway pid ${j.pid} is dead and left routing behind: run \`tunsteer down --state-dir ${args.stateDir}\`\n`);
    return 1;
  }
  const lines = [
    `mode      ${j.mode}${up ? '' : ' (starting)'}`,
    `pid       ${j.pid}`,
    `netns     ${describeNetns(j.netns)}${sameNetns(j.netns, currentNetns()) ? '' : ' (not this one)'}`,
    `device    ${j.tunName}${live ? ` mtu ${live.tun.mtu} ${live.tun.address}` : ''}`,
    `uplink    ${j.uplink ? `${j.uplink.dev}${j.uplink.gateway ? ` via ${j.uplink.gateway}` : ''}, sockets bound to ${j.uplink.source}` : '?'}`,
    ...(j.uplink6 ? [`uplink6   ${j.uplink6.dev}${j.uplink6.gateway ? ` via ${j.uplink6.gateway}` : ''}, sockets bound to ${j.uplink6.source}`] : []),
    'routing',
    ...renderPlan(j.steps, { comments: false }).map((l) => `  ${l}`),
  ];
  if (live) {
    lines.push(`counters  (at ${live.updatedAt})`);
    for (const [k, v] of Object.entries(live.counters)) lines.push(`  ${k.padEnd(22)} ${v}`);
    const drops = Object.entries(live.drops).filter(([, v]) => v > 0);
    if (drops.length) lines.push('drops', ...drops.map(([k, v]) => `  ${k.padEnd(22)} ${v}`));
  }
  process.stdout.write(lines.join('\n') + '\n');
  return up ? 0 : 1;
}

export function runDown(args: DownArgs): number {
  try {
    endOrphanedDataPlane(args.stateDir);
    const r = restoreFromJournal(args.stateDir, { log: (l) => process.stderr.write(`${l}\n`) });
    rmSync(statusPath(args.stateDir), { force: true });
    process.stdout.write(
      r.found
        ? `restored what gateway pid ${r.pid} left: ${r.undone} undone, ${r.alreadyGone} already gone\n`
        : `nothing to restore in ${args.stateDir}\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`tunsteer: ${(e as Error).message}\n`);
    return 1;
  }
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
