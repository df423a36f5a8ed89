// The stack's one notion of now. input() and tick() bring theirs; calls from
// outside them (a stream's write, accept, consumed) read the source when one
// is given (the data plane's performance.now), else reuse the last time seen,
// so a test's fake clock drives every path. Nothing in src/stack reads a clock.
export class StackClock {
  /** The last time given or read. */
  last = 0;

  constructor(private readonly source: (() => number) | undefined) {}

  /** A batch or tick at `now`. */
  set(now: number): void {
    this.last = now;
  }

  /** Now, for a call that came without a time. */
  now(): number {
    if (this.source !== undefined) this.last = this.source();
    return this.last;
  }
}
