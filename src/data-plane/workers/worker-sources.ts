// The control API's view of the stack workers: each worker is one live
// source (its connections listed and closed by id, its bytes), asked over its
// port, and the rules' hits are summed over the workers and the data plane's
// own proxy core. A worker that does not answer lists nothing for the moment
// and keeps its last byte totals, so the traffic graph does not dip.
import type { Bytes, LiveSource } from '../../control/contracts.js';
import type { ProxyCore } from '../../proxy/proxy-core.js';
import type { StackWorkers } from './worker-pool.js';

/** The control API polls: an answer later than this is not waited for. */
const VIEW_TIMEOUT_MS = 2000;

export function workerSources(pool: StackWorkers): LiveSource[] {
  return [...Array(pool.count).keys()].map((i) => {
    // a restarted worker counts from 0 again: what its predecessor relayed stays in the total
    let base: Bytes = { up: 0, down: 0 };
    let last: Bytes = { up: 0, down: 0 };
    return {
      connections: () => pool.ask(i, { op: 'connections' }, VIEW_TIMEOUT_MS).catch(() => []),
      close: (id) => pool.ask(i, { op: 'close', id }, VIEW_TIMEOUT_MS).catch(() => false),
      closeAll: () => pool.ask(i, { op: 'closeAll' }, VIEW_TIMEOUT_MS).catch(() => 0),
      totals: async () => {
        try {
          const t = await pool.ask(i, { op: 'totals' }, VIEW_TIMEOUT_MS);
          if (t.up < last.up || t.down < last.down) base = { up: base.up + last.up, down: base.down + last.down };
          last = t;
        } catch {
          // not answering now: its last figures stand
        }
        return { up: base.up + last.up, down: base.down + last.down };
      },
    };
  });
}

/** Each rule's hits (and the last one's time) over the data plane's core and every worker that runs the same rules. */
export async function summedHits(pool: StackWorkers, core: ProxyCore): Promise<{ counts: Float64Array; at: Float64Array }> {
  const counts = Float64Array.from(core.policy.hitCounts);
  const at = Float64Array.from(core.policy.hitAt);
  const answers = await Promise.allSettled([...Array(pool.count).keys()].map((i) => pool.ask(i, { op: 'hits' }, VIEW_TIMEOUT_MS)));
  for (const a of answers) {
    // a worker between a reload's prepare and commit (or not answering) is left out
    if (a.status !== 'fulfilled' || a.value.counts.length !== counts.length) continue;
    for (let k = 0; k < counts.length; k++) {
      counts[k] += a.value.counts[k];
      at[k] = Math.max(at[k], a.value.at[k]);
    }
  }
  return { counts, at };
}
