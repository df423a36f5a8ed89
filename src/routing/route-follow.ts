// Route-all under a running gateway when the uplink changes: the plan for the
// new uplink is compared with the steps the journal lists as in place, and
// only the difference is applied, through the journal as at start.
//
// Order (see docs/DECISIONS.md "Following the network"):
//   1. new bypass rules in (from NEW lookup main, to NEWGW lookup main): each
//      journaled before it runs, so restore after a crash takes it back too;
//   2. old bypass rules out, each taken off the journal once it is gone;
//   3. (the caller) the data plane binds new sockets to the new address.
// The table route and the catch-all `lookup T` never change (the plan's
// priorities do not depend on the uplink), so traffic stays steered all the
// way through: there is no moment where it could leak around the TUN. A
// socket can only loop into the TUN if its source has no bypass, and a source
// never loses its bypass while it is on the host (KeptSources): the new one
// has its rule before any socket binds it, an old one keeps its rule until
// the address is gone, after which the kernel refuses to send from it anyway
// (ENETUNREACH before any rule is looked at).
import { formatArgv, IpCommandError, type IpExecSync } from './ip-exec.js';
import type { Step } from './route-plan.js';
import type { JournaledStep, RouteJournal } from './route-journal.js';
import { undoStep } from './route-runner.js';
import { procSysctl } from './ip-exec.js';

/** What a step is, for comparing plans: its command. */
export function stepKey(s: Step): string {
  if (s.kind === 'ip') return formatArgv(s.do);
  if (s.kind === 'sysctl') return `sysctl ${s.key}=${s.value}`;
  if (s.kind === 'nft') return `nft ${s.script}`;
  return `file ${s.path}`;
}

/** The steps the next plan adds (in its order) and the ones it no longer has (in journal order). Pure. */
export function planDiff(current: readonly JournaledStep[], next: readonly Step[]): { add: Step[]; remove: JournaledStep[] } {
  const have = new Set(current.map(stepKey));
  const want = new Set(next.map(stepKey));
  return { add: next.filter((s) => !have.has(stepKey(s))), remove: current.filter((s) => !want.has(stepKey(s))) };
}

/**
 * Journal order for a mix of old and new steps: the plan's own order (sysctls,
 * then per family the table route and the rules by priority), so restore,
 * which undoes last-first, still takes the catch-all out before any bypass.
 */
export function planOrder(steps: readonly JournaledStep[]): JournaledStep[] {
  const rank = (s: JournaledStep): [number, number, number] => {
    if (s.kind !== 'ip') return [0, 0, 0];
    const family = s.do[0] === '-6' ? 1 : 0;
    const p = s.do.indexOf('priority');
    return s.do[1] === 'route' ? [1 + family, 0, 0] : [1 + family, 1, p < 0 ? 0 : Number(s.do[p + 1])];
  };
  return steps
    .map((s, i) => ({ s, i, r: rank(s) }))
    .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.r[2] - b.r[2] || a.i - b.i)
    .map((x) => x.s);
}

export interface FollowResult {
  added: Step[];
  removed: JournaledStep[];
}

export class RouteFollowError extends Error {
  override name = 'RouteFollowError';
}

/**
 * Moves the journaled route-all state to the next plan: new steps in first,
 * then old ones out. An add that fails stops before anything is removed (the
 * old path stays whole) and throws; the journal lists exactly what is in place.
 */
export function applyPlanChange(journal: Pick<RouteJournal, 'data' | 'record'>, next: readonly Step[], exec: IpExecSync): FollowResult {
  const { add, remove } = planDiff(journal.data.steps, next);
  let inPlace: JournaledStep[] = [...journal.data.steps];
  for (const step of add) {
    if (step.kind !== 'ip') throw new RouteFollowError(`cannot follow the uplink with a ${step.kind} step (${step.desc})`);
    const withIt = planOrder([...inPlace, step]);
    journal.record(withIt, withIt.length - 1); // listed before it runs, so a crash leaves it undoable
    try {
      exec(step.do);
    } catch (e) {
      journal.record(inPlace);
      const why = e instanceof IpCommandError ? e.stderr.trim() : String(e);
      throw new RouteFollowError(`routing step "${step.desc}" failed: \`${formatArgv(step.do)}\`: ${why}`);
    }
    inPlace = withIt;
    journal.record(inPlace);
  }
  for (const step of remove) {
    try {
      undoStep(step, exec, procSysctl);
    } catch (e) {
      // still in place: it stays journaled, and the next change (or restore) tries again
      const why = e instanceof IpCommandError ? e.stderr.trim() : String(e);
      throw new RouteFollowError(`removing "${step.desc}" failed: ${why}`);
    }
    inPlace = inPlace.filter((s) => s !== step);
    journal.record(inPlace);
  }
  return { added: add, removed: remove };
}
