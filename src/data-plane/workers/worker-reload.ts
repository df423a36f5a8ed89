// A reload reaching the stack workers. Compiled rules and rule-sets do not
// cross threads, so each worker builds its own from the same config (and the
// same rule-set texts the data plane's thread read), in two steps: every
// worker prepares (builds, changes nothing); only when all have, the data
// plane's thread and then every worker swap it in (live-apply.ts's commit,
// synchronous in each thread). One that cannot prepare fails the reload,
// named, and nothing changes anywhere.
import type { Policy } from '../../proxy/policy.js';
import { LiveRuleSet } from '../../proxy/rules/live-rule-set.js';
import type { RuleSets } from '../../proxy/rules/rule-types.js';
import type { DataPlaneConfig, LiveConfig } from '../config.js';
import { prepareLive, type LiveTarget } from '../live-apply.js';
import type { RuleSetSource } from './messages.js';
import type { StackWorkers } from './worker-pool.js';

type Limits = Pick<DataPlaneConfig, 'maxConnections' | 'synBacklog' | 'maxUdpFlows' | 'memoryBudgetMb'>;

/**
 * Limits split evenly: the kernel spreads flows over the queues by their hash,
 * so each worker gets its share (docs/DECISIONS.md "Stack workers").
 */
export function workerLimits<C extends Limits>(c: C, n: number): C {
  const share = (v: number) => Math.max(1, Math.ceil(v / n));
  return { ...c, maxConnections: share(c.maxConnections), synBacklog: share(c.synBacklog), maxUdpFlows: share(c.maxUdpFlows), memoryBudgetMb: c.memoryBudgetMb / n };
}

/**
 * The policy's rule-sets for a worker: each with the text it was compiled
 * from, or "reuse" where it is the one `running` has (same file and format:
 * the worker runs it too, kept current by the data plane's watcher).
 */
export function ruleSetSources(policy: Policy, running?: RuleSets): RuleSetSource[] {
  return [...policy.ruleSets].map(([name, set]): RuleSetSource => {
    if (running?.get(name) === set) return { name, reuse: true };
    if (!(set instanceof LiveRuleSet) || set.text === null) throw new Error(`rule_sets.${name}: its text was not kept for the stack workers`);
    return { name, path: set.path, ...(set.format ? { format: set.format } : {}), text: set.text };
  });
}

/** Rejects, changing nothing, when this thread or a worker cannot build it; the error names each worker that failed. */
export async function reconfigureWorkers(pool: StackWorkers, t: LiveTarget, live: LiveConfig): Promise<void> {
  const running = t.core.policy.ruleSets;
  const here = prepareLive(t, live);
  const seq = pool.reloadSeq + 1;
  const share = workerLimits(live, pool.count);
  const all = [...Array(pool.count).keys()];
  const sets = ruleSetSources(here.policy, running);
  const prepared = await Promise.allSettled(all.map((i) => pool.ask(i, { op: 'prepare', seq, live: share, sets })));
  const failed = named(prepared);
  if (failed.length) {
    for (const i of all) pool.ask(i, { op: 'abort', seq }).catch(() => {});
    throw new Error(`not applied (nothing changed): ${failed.join('; ')}`);
  }
  // from here on a worker that (re)starts gets the new config
  here.commit();
  pool.reloadSeq = seq;
  const committed = await Promise.allSettled(all.map((i) => pool.ask(i, { op: 'commit', seq })));
  // false: the worker restarted between its prepare and the commit, from the config in force then: build it there now
  const late = all.filter((i) => committed[i].status === 'fulfilled' && !(committed[i] as PromiseFulfilledResult<boolean>).value);
  const full = late.length ? ruleSetSources(here.policy) : [];
  const redone = await Promise.allSettled(late.map((i) => pool.ask(i, { op: 'prepare', seq, live: share, sets: full }).then(() => pool.ask(i, { op: 'commit', seq }))));
  const stuck = [...named(committed), ...named(redone, late)];
  if (stuck.length) throw new Error(`applied by the data plane's thread and the other workers, not by ${stuck.join('; ')}`);
}

/** "worker 1: why" for each rejected answer (indices: the workers asked, in order; default 0..n-1). */
function named(results: PromiseSettledResult<unknown>[], indices?: number[]): string[] {
  return results.flatMap((r, k) => (r.status === 'rejected' ? [`worker ${indices ? indices[k] : k}: ${(r.reason as Error).message}`] : []));
}
