// V8 collects garbage when it needs room. Once a crowd of connections has closed,
// an idle gateway allocates almost nothing, so their garbage (flows, streams,
// buffers) stays in the heap and RSS stays at the crowd's peak for as long as the
// gateway idles. One full collection after the crowd is gone gives it back.
// The data plane runs with --expose-gc for this; without it (in-process modes) nothing happens.

/** Closed flows leave the stack's timer wheel within one turn (4096 x 10 ms): collect after that. */
export const IDLE_GC_DELAY_MS = 45_000;
/** Fewer connections than this at the peak: not worth a full collection. */
export const IDLE_GC_MIN_PEAK = 1000;

export class IdleGc {
  private peak = 0;
  private lowSince: number | null = null;
  runs = 0;

  constructor(
    private readonly gc: (() => void) | undefined,
    private readonly delayMs = IDLE_GC_DELAY_MS,
    private readonly minPeak = IDLE_GC_MIN_PEAK,
  ) {}

  /** Called periodically with the number of live connections; collects once when it has fallen under a quarter of its peak and stayed there. */
  sample(live: number, now: number): boolean {
    if (!this.gc) return false;
    if (live > this.peak) this.peak = live;
    if (this.peak < this.minPeak || live * 4 > this.peak) {
      this.lowSince = null;
      return false;
    }
    if (this.lowSince === null) this.lowSince = now;
    if (now - this.lowSince < this.delayMs) return false;
    this.gc();
    this.runs++;
    this.peak = live;
    this.lowSince = null;
    return true;
  }
}
