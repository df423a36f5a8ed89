// V8 collects garbage when it needs room, and gives back little: after a crowd of connections
// the heap keeps the pages that held its garbage. Two moments are worth one full collection:
//  - a crowd has gone: an idle gateway allocates almost nothing, so its garbage (flows, streams,
//    buffers) stays in the heap and RSS at the crowd's peak for as long as the gateway idles;
//  - a crowd has arrived and stays (idle keep-alive connections, a browser's sockets): the burst
//    of connects left the old space fragmented, 40 % more heap than the live objects need
//    (docs/DECISIONS.md, "Lean memory"), as long as nothing else collects.
// Each collection also compacts: V8 moves live objects out of fragmented pages only when it
// chooses to, and a page with one live object stays resident. The data plane runs with
// --expose-gc for this; without it (in-process modes) nothing happens.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** Closed flows leave the stack's timer wheel within one turn (4096 x 10 ms): collect after that. */
export const IDLE_GC_DELAY_MS = 45_000;
/** Fewer connections than this at the peak (or arriving): not worth a full collection. */
export const IDLE_GC_MIN_PEAK = 1000;
/** A crowd that stays is collected only when V8 holds at least this much beyond the live heap: the pause is not worth less. */
export const IDLE_GC_MIN_SLACK = 16 * 1048576;

/** Bytes the heap holds beyond its live objects. */
export function heapSlack(): number {
  const h = getHeapStatistics();
  return h.total_heap_size - h.used_heap_size;
}

/** One full collection that also compacts every page (the flag only for this call). */
export function compactingGc(gc: () => void): void {
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
}

export class IdleGc {
  private peak = 0;
  private lowSince: number | null = null;
  /** Live connections after the last collection (none at start): a crowd arrives above it. */
  private base = 0;
  private steadyAt = 0;
  private steadySince: number | null = null;
  runs = 0;

  constructor(
    private readonly gc: (() => void) | undefined,
    private readonly delayMs = IDLE_GC_DELAY_MS,
    private readonly minPeak = IDLE_GC_MIN_PEAK,
    private readonly slack: () => number = heapSlack,
    private readonly collect: (gc: () => void) => void = compactingGc,
  ) {}

  /** Called periodically with the number of live connections; collects once per crowd that has gone or has settled, after the delay. */
  sample(live: number, now: number): boolean {
    if (!this.gc) return false;
    if (live > this.peak) this.peak = live;
    if (!this.crowdGone(live, now) && !this.crowdSettled(live, now)) return false;
    this.collect(this.gc);
    this.runs++;
    this.peak = this.base = live;
    this.lowSince = this.steadySince = null;
    return true;
  }

  /** Live connections fell under a quarter of their peak and stayed there for the delay. */
  private crowdGone(live: number, now: number): boolean {
    if (this.peak < this.minPeak || live * 4 > this.peak) {
      this.lowSince = null;
      return false;
    }
    if (this.lowSince === null) this.lowSince = now;
    return now - this.lowSince >= this.delayMs;
  }

  /** At least minPeak more connections than after the last collection, their count within 10 % for the delay, and the heap worth compacting. */
  private crowdSettled(live: number, now: number): boolean {
    if (live - this.base < this.minPeak) {
      this.steadySince = null;
      return false;
    }
    if (this.steadySince === null || Math.abs(live - this.steadyAt) * 10 > this.steadyAt) {
      this.steadySince = now;
      this.steadyAt = live;
      return false;
    }
    if (now - this.steadySince < this.delayMs) return false;
    if (this.slack() >= IDLE_GC_MIN_SLACK) return true;
    // not worth a pause now: the next crowd counts from here
    this.base = live;
    this.steadySince = null;
    return false;
  }
}
