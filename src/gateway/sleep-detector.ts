// Tells a suspend or a stall apart from ordinary time passing, by comparing
// two clocks at each tick of a timer. Linux's monotonic clock (performance.now)
// stops while the machine is suspended; boot time (/proc/uptime, CLOCK_BOOTTIME)
// goes on, and unlike wall time no NTP step moves it. So:
//   boot advanced more than monotonic       -> the machine slept (suspend)
//   monotonic advanced far more than a tick  -> this process did not run
//                                               (SIGSTOP, a paused VM, a swap storm):
//                                               its timers fired late
// Either way connections may have gone stale while nothing looked.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface Clocks {
  /** ms, stops during suspend. */
  mono(): number;
  /** ms, runs during suspend. */
  boot(): number;
}

export const systemClocks: Clocks = {
  mono: () => performance.now(),
  boot: () => {
    try {
      return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000;
    } catch {
      return Date.now(); // no /proc: wall time, which NTP may step (a false wake only costs a check)
    }
  },
};

export interface Wake {
  kind: 'suspend' | 'late-timers';
  /** How long the gateway was away, as far as the clocks tell. */
  sleptMs: number;
}

export interface SleepDetectorOptions {
  /** The tick the caller runs check() at. */
  intervalMs: number;
  /** Boot time ahead of monotonic by more than this: a suspend (/proc/uptime has 10 ms steps). */
  suspendMs: number;
  /** A tick later than this: timers fired late. Well above what a busy machine's event loop lags. */
  lateMs: number;
}

export const DEFAULT_SLEEP_OPTIONS: SleepDetectorOptions = { intervalMs: 1000, suspendMs: 2000, lateMs: 5000 };

export class SleepDetector {
  private lastMono: number;
  private lastBoot: number;

  constructor(
    private readonly clocks: Clocks = systemClocks,
    private readonly opts: SleepDetectorOptions = DEFAULT_SLEEP_OPTIONS,
  ) {
    this.lastMono = clocks.mono();
    this.lastBoot = clocks.boot();
  }

  /** Called every intervalMs: what happened since the last call, or null. */
  check(): Wake | null {
    const mono = this.clocks.mono();
    const boot = this.clocks.boot();
    const dMono = mono - this.lastMono;
    const dBoot = boot - this.lastBoot;
    this.lastMono = mono;
    this.lastBoot = boot;
    if (dBoot - dMono > this.opts.suspendMs) return { kind: 'suspend', sleptMs: Math.round(dBoot - dMono) };
    if (dMono - this.opts.intervalMs > this.opts.lateMs) return { kind: 'late-timers', sleptMs: Math.round(dMono - this.opts.intervalMs) };
    return null;
  }
}
