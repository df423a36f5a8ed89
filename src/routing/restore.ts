// Puts routing back from the journal: on exit, on a signal, on a crash (see
// gateway/exit-handlers.ts), and from `tunsteer down` after kill -9.
// Synchronous throughout (execFileSync), so it completes inside an 'exit' or
// signal handler before the process ends.
//
// Idempotent: an undo whose object is already gone counts as done, and a
// missing journal means there is nothing to do. Refuses to touch a namespace
// the journal was not written in: two gateways in two network namespaces may
// share /run, and deleting "the same" rule in the wrong one would hit a
// stranger's routing.
import { ipExecInNetns, ipExecSync, procSysctl, type IpExecSync, type SysctlIo } from './ip-exec.js';
import {
  currentNetns,
  describeNetns,
  journalPath,
  netnsAt,
  ownerAlive,
  processStartTime,
  readJournal,
  removeJournal,
  replaceJournal,
  sameNetns,
  RouteJournal,
  StaleJournalError,
  type AcquireOptions,
  type JournalMeta,
  type JournaledStep,
  type NetnsId,
} from './route-journal.js';
import { undoCommand, undoStep } from './route-runner.js';

export class RestoreRefusedError extends Error {
  override name = 'RestoreRefusedError';
  constructor(
    readonly reason: 'netns-mismatch' | 'owner-alive',
    message: string,
  ) {
    super(message);
  }
}

export class RestoreFailedError extends Error {
  override name = 'RestoreFailedError';
  constructor(readonly failures: { command: string; error: string }[]) {
    super(`could not undo ${failures.length} routing change(s), kept in the journal for another try: ` + failures.map((f) => `\`${f.command}\`: ${f.error}`).join('; '));
  }
}

export interface RestoreOptions {
  exec?: IpExecSync;
  sysctl?: SysctlIo;
  /** The namespace we are in (default: /proc/self/ns/net). */
  netns?: NetnsId;
  /** Restore even though the journal's gateway is still running. */
  force?: boolean;
  /** Progress lines, one per undo. */
  log?: (line: string) => void;
  /**
   * Only a journal this process wrote; anyone else's is left alone and reported
   * as {found: false}. For exit handlers: a gateway that lost the lock race
   * must not undo the winner's routing on its way out.
   */
  ownOnly?: boolean;
}

export interface RestoreReport {
  /** False: no journal, nothing to do. */
  found: boolean;
  /** Undos that changed something. */
  undone: number;
  /** Undos whose object was already gone. */
  alreadyGone: number;
  /** pid that wrote the journal. */
  pid?: number;
}

export interface UndoOutcome {
  undone: number;
  alreadyGone: number;
  /** Steps whose undo failed, in journal order. */
  left: JournaledStep[];
  failures: { command: string; error: string }[];
}

/** Undoes steps last-first, going on past failures so one stuck rule does not keep the rest in place. */
export function undoAll(steps: readonly JournaledStep[], exec: IpExecSync, sysctl: SysctlIo, log?: (l: string) => void): UndoOutcome {
  const out: UndoOutcome = { undone: 0, alreadyGone: 0, left: [], failures: [] };
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i];
    try {
      const r = undoStep(s, exec, sysctl);
      if (r === 'undone') out.undone++;
      else out.alreadyGone++;
      log?.(`${r === 'undone' ? 'undone' : 'already gone'}: ${undoCommand(s)}`);
    } catch (e) {
      const error = e instanceof Error ? ('stderr' in e ? String((e as { stderr: string }).stderr).trim() : e.message) : String(e);
      out.failures.push({ command: undoCommand(s), error });
      out.left.unshift(s);
      log?.(`FAILED: ${undoCommand(s)}: ${error}`);
    }
  }
  return out;
}

/**
 * Undoes every journaled step in reverse order, then removes the journal.
 * No journal: returns {found: false}. Throws RestoreRefusedError (other
 * namespace, or owner still running and not us) and RestoreFailedError (some
 * undo failed for a reason other than "already gone"; those stay journaled).
 */
export function restoreFromJournal(stateDir: string, opts: RestoreOptions = {}): RestoreReport {
  const j = readJournal(stateDir);
  if (!j) return { found: false, undone: 0, alreadyGone: 0 };
  const self = j.pid === process.pid && (j.pidStart === undefined || j.pidStart === processStartTime(process.pid));
  if (opts.ownOnly && !self) return { found: false, undone: 0, alreadyGone: 0 };
  const here = opts.netns ?? currentNetns();
  let exec = opts.exec ?? ipExecSync;
  if (!sameNetns(j.netns, here) && j.netnsPath) {
    // up --netns: the steps live in another namespace, entered by its path
    if (!self && !opts.force && ownerAlive(j)) throw ownerAliveError(j);
    if (!reachable(j.netnsPath, j.netns)) {
      opts.log?.(`namespace ${j.netnsPath} is gone, and the routes that were in it with it`);
      removeJournal(stateDir);
      return { found: true, undone: 0, alreadyGone: j.steps.length, pid: j.pid };
    }
    exec = opts.exec ?? ipExecInNetns(j.netnsPath);
  } else if (!sameNetns(j.netns, here)) {
    throw new RestoreRefusedError(
      'netns-mismatch',
      `the routing journal ${journalPath(stateDir)} was written in ${describeNetns(j.netns)} by pid ${j.pid}, ` +
        `but this process runs in ${describeNetns(here)}; run it there` +
        (j.netns.name ? ` (\`ip netns exec ${j.netns.name} tunsteer down --state-dir ${stateDir}\`)` : '') +
        ', or give each namespace its own --state-dir',
    );
  }
  if (!self && !opts.force && ownerAlive(j)) throw ownerAliveError(j);
  const r = undoAll(j.steps, exec, opts.sysctl ?? procSysctl, opts.log);
  if (r.failures.length) {
    replaceJournal(stateDir, { ...j, steps: r.left, applied: r.left.length });
    throw new RestoreFailedError(r.failures);
  }
  removeJournal(stateDir);
  return { found: true, undone: r.undone, alreadyGone: r.alreadyGone, pid: j.pid };
}

function ownerAliveError(j: { pid: number }): RestoreRefusedError {
  return new RestoreRefusedError('owner-alive', `tunsteer pid ${j.pid} still runs and owns this routing; stop it (SIGTERM restores on exit), ` + 'or use --force if it is wedged');
}

/** Does path still lead to the namespace the journal names? (A deleted name or a dead pid's /proc entry does not.) */
function reachable(path: string, id: NetnsId): boolean {
  try {
    return sameNetns(netnsAt(path), id);
  } catch {
    return false;
  }
}

/**
 * Takes the state dir for a mode: a dead gateway's journal from this
 * namespace (or one it entered by path) is restored first, then taken over.
 */
export function acquireJournal(stateDir: string, meta: JournalMeta, opts: { where?: AcquireOptions; restore?: RestoreOptions; restoreStale?: boolean } = {}): RouteJournal {
  try {
    return RouteJournal.acquire(stateDir, meta, opts.where);
  } catch (e) {
    if (!(e instanceof StaleJournalError) || opts.restoreStale === false) throw e;
    if (!e.journal.netnsPath && !sameNetns(e.journal.netns, currentNetns())) throw e;
    opts.restore?.log?.(`undoing what dead tunsteer pid ${e.journal.pid} left in place`);
    restoreFromJournal(stateDir, opts.restore);
    return RouteJournal.acquire(stateDir, meta, opts.where);
  }
}
