// The workers' status as the data plane's thread sees it: each worker's last
// report (once a second), summed for `tunsteer status`, the metrics endpoint
// and the fake-IP pool's liveness check.
import type { Worker } from 'node:worker_threads';
import type { ProxyCore } from '../../proxy/proxy-core.js';
import type { MetricSources } from '../metrics.js';
import type { FromWorker } from './messages.js';

export interface Slot {
  worker: Worker;
  ready: boolean;
  alive: boolean;
  status: Extract<FromWorker, { type: 'status' }> | null;
  /** The last names batch it took. */
  took: number;
  /** Asks waiting for its answer, by id. */
  asks: Map<number, { resolve(v: unknown): void; reject(e: Error): void }>;
}

/** True when a worker's stack has connections to this fake (as of its last status, once a second: the hold time covers the gap). */
export function liveTo(slots: readonly Slot[], ip: number): boolean {
  return slots.some((s) => s.status?.liveFakes.includes(ip) === true);
}

/** The workers' counters and drops, summed. */
export function totals(slots: readonly Slot[], restarts: number): { counters: Record<string, number>; drops: Record<string, number> } {
  const counters: Record<string, number> = { workers: slots.length, worker_restarts: restarts };
  const drops: Record<string, number> = {};
  for (const s of slots) {
    if (!s.status) continue;
    // the TUN's offloads are the device's, the same on every queue: not summed, the data plane says them once (StackWorkers.offloads)
    for (const [k, v] of Object.entries(s.status.counters)) if (!k.startsWith('tun_offload_')) counters[k] = (counters[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.status.drops)) drops[k] = (drops[k] ?? 0) + v;
  }
  return { counters, drops };
}

/** Each worker's share of the connections (tunsteer status: is every queue used?), as of their last status. */
export function perWorker(slots: readonly Slot[]): Record<string, number> {
  const out: Record<string, number> = {};
  slots.forEach((s, i) => {
    out[`worker_${i}_proxy_total`] = s.status?.counters.proxy_total ?? 0;
    out[`worker_${i}_proxy_active`] = s.status?.counters.proxy_active ?? 0;
  });
  return out;
}

/**
 * The proxy core's counters and rule hits for the metrics endpoint: this
 * thread's core (listeners) plus every worker's, as of their last status.
 */
export function proxyView(slots: readonly Slot[], core: ProxyCore): MetricSources['proxy'] {
  const counters = new Proxy(core.counters, {
    get: (c, k) => (typeof k === 'string' ? (c[k as keyof typeof c] ?? 0) + slots.reduce((n, s) => n + (s.status?.counters[`proxy_${k}`] ?? 0), 0) : undefined),
  });
  return {
    counters,
    policy: {
      get hits() {
        const all = new Map(core.policy.hits);
        for (const s of slots) for (const [rule, n] of s.status?.hits ?? []) all.set(rule, (all.get(rule) ?? 0) + n);
        return all;
      },
    },
  };
}

/** Connections open in the workers, as of their last status. */
export function activeIn(slots: readonly Slot[]): number {
  return slots.reduce((n, s) => n + (s.status?.counters.proxy_active ?? 0), 0);
}
