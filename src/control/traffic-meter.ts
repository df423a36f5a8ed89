// Bytes per second, up and down, from the sources' running totals: sampled
// once a second, the difference is the rate. The last minutes are kept for a
// dashboard that opens late (its chart starts full).
import type { Bytes } from './contracts.js';

export interface TrafficSample {
  /** Epoch ms. */
  t: number;
  /** Bytes per second: client to server, server to client. */
  up: number;
  down: number;
}

const HISTORY = 600;

export class TrafficMeter {
  private readonly samples: TrafficSample[] = [];
  private last: Bytes | null = null;
  private lastAt = 0;
  private readonly listeners = new Set<(s: TrafficSample) => void>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly totals: () => Promise<Bytes>) {}

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => void this.sample(), intervalMs);
    this.timer.unref();
    void this.sample();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async sample(now = Date.now()): Promise<void> {
    const b = await this.totals();
    if (this.last !== null && now > this.lastAt) {
      const secs = (now - this.lastAt) / 1000;
      // totals only grow; a smaller one (a source that restarted) counts from zero
      const s: TrafficSample = { t: now, up: Math.round(Math.max(0, b.up - this.last.up) / secs), down: Math.round(Math.max(0, b.down - this.last.down) / secs) };
      this.samples.push(s);
      if (this.samples.length > HISTORY) this.samples.shift();
      for (const f of this.listeners) f(s);
    }
    this.last = b;
    this.lastAt = now;
  }

  history(): TrafficSample[] {
    return [...this.samples];
  }

  latest(): TrafficSample | undefined {
    return this.samples.at(-1);
  }

  subscribe(f: (s: TrafficSample) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }
}
