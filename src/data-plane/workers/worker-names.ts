// New names for the workers' fake-IP replicas, and the order that makes them
// safe: a DNS answer that made a new mapping (or taught a secret-header
// destination) leaves only once every running worker took it, so a client's
// SYN on any queue finds its name. A worker that does not answer within
// NAMES_TIMEOUT_MS is dead or stuck; its restart starts from the full table.
import { ipv4ToString } from '../../net/address.js';
import type { ToWorker } from './messages.js';
import type { Slot } from './worker-status.js';

/** A worker that does not take new names within this is dead or stuck: the answer leaves anyway (its restart gets them all). */
const NAMES_TIMEOUT_MS = 1000;

export class NameBroadcast {
  /** Names and learned destinations not yet sent to the workers. */
  private pending: { fakeIps: [string, string][]; learned: [string, string[], number][] } = { fakeIps: [], learned: [] };
  /** The last batch sent: a worker started now took every batch up to it (its init holds the full table). */
  seq = 0;
  private inflight: Promise<void> = Promise.resolve();
  private readonly waiters = new Set<{ seq: number; done: () => void }>();

  constructor(
    private readonly slots: readonly Slot[],
    private readonly post: (slot: Slot, m: ToWorker) => void,
  ) {}

  /** Hooks for gatewayDns: what the workers must learn before an answer leaves. */
  readonly news = {
    mapped: (name: string, ip: number) => void this.pending.fakeIps.push([name, ipv4ToString(ip)]),
    learned: (name: string, addresses: string[], ttl: number) => void this.pending.learned.push([name, addresses, ttl]),
  };

  /** Sends pending names to every worker and resolves once all took them (or NAMES_TIMEOUT_MS passed). */
  flush(): Promise<void> {
    if (this.pending.fakeIps.length === 0 && this.pending.learned.length === 0) return this.inflight;
    const batch = this.pending;
    this.pending = { fakeIps: [], learned: [] };
    const seq = ++this.seq;
    for (const s of this.slots) this.post(s, { type: 'names', seq, ...batch });
    const done = new Promise<void>((resolve) => {
      const w = {
        seq,
        done: () => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve();
        },
      };
      const timer = setTimeout(w.done, NAMES_TIMEOUT_MS);
      this.waiters.add(w);
      this.wake();
    });
    this.inflight = done;
    return done;
  }

  /** Resolves the names batches every running worker took; one that died took nothing, and its restart starts with every mapping. */
  wake(): void {
    for (const w of [...this.waiters]) if (this.slots.every((s) => s.took >= w.seq || !s.ready || !s.alive)) w.done();
  }
}
