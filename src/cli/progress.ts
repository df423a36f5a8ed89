// A progress line for long work (tunsteer demo, the benchmark suite): where it
// is and about how long is left. On stderr: on a terminal one line that
// updates in place (once a second), elsewhere (a log, CI) one line per step.
// The time left is the steps' estimates still to come, scaled by how the
// finished steps compared with theirs: a slow machine is slow throughout.

export interface ProgressStep {
  name: string;
  /** About how long this step takes, in ms. */
  estimateMs: number;
}

export interface ProgressOptions {
  /** Default: process.stderr. */
  out?: NodeJS.WritableStream & { isTTY?: boolean };
  /** One updating line (a terminal) or a line per step. Default: out.isTTY. */
  tty?: boolean;
  now?: () => number;
  /** Prefix of every line, e.g. "demo" or "bench". */
  label: string;
}

/** "1:05", "12:00", "1:02:03". */
export function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/**
 * The time left: what remains of the current step and the estimates of the
 * steps after it, times the pace so far: actual over estimated time of the
 * steps done, both with a quarter of the whole estimate added, so the first
 * short steps move it a little and a long run a lot; kept within 0.25..4.
 */
export function remainingMs(steps: readonly ProgressStep[], current: number, spentOnDone: number, spentOnCurrent: number): number {
  const estimatedDone = steps.slice(0, current).reduce((a, s) => a + s.estimateMs, 0);
  const prior = steps.reduce((a, s) => a + s.estimateMs, 0) / 4;
  const pace = Math.min(4, Math.max(0.25, (spentOnDone + prior) / (estimatedDone + prior)));
  const cur = steps[current] ? Math.max(0, steps[current].estimateMs * pace - spentOnCurrent) : 0;
  const after = steps.slice(current + 1).reduce((a, s) => a + s.estimateMs, 0) * pace;
  return cur + after;
}

export class Progress {
  private readonly out: NodeJS.WritableStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly startedAt: number;
  private current = -1;
  private stepStartedAt = 0;
  private spentOnDone = 0;
  private detail = '';
  private timer: NodeJS.Timeout | null = null;
  private shown = false;

  constructor(
    private steps: readonly ProgressStep[],
    private readonly opts: ProgressOptions,
  ) {
    this.out = opts.out ?? process.stderr;
    this.tty = opts.tty ?? (opts.out ?? process.stderr).isTTY === true;
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
  }

  /** Starts step `name` (the next one when it is not in the list: steps may be skipped). */
  step(name: string, detail = ''): void {
    const at = this.steps.findIndex((s, i) => i > this.current && s.name === name);
    const t = this.now();
    if (this.current >= 0) this.spentOnDone += t - this.stepStartedAt;
    // steps skipped on the way count as done in no time
    this.current = at >= 0 ? at : Math.min(this.current + 1, this.steps.length - 1);
    this.stepStartedAt = t;
    this.detail = detail;
    if (this.tty) {
      this.draw();
      this.timer ??= setInterval(() => this.draw(), 1000).unref();
    } else {
      this.out.write(`${this.line()}\n`);
    }
  }

  /** Drops the steps still to come whose names start with prefix (work that will not happen: a path not measured). */
  skip(prefix: string): void {
    this.steps = this.steps.filter((s, i) => i <= this.current || !s.name.startsWith(prefix));
  }

  /** The text of the progress line now. */
  line(): string {
    const t = this.now();
    const s = this.steps[this.current];
    const left = remainingMs(this.steps, this.current, this.spentOnDone, t - this.stepStartedAt);
    const what = s ? `${s.name}${this.detail ? `: ${this.detail}` : ''}` : 'starting';
    return `${this.opts.label} [${this.current + 1}/${this.steps.length}] ${what} · ${clock(t - this.startedAt)} elapsed, about ${clock(left)} left`;
  }

  /** Writes text to a stream (stdout) without tearing the line: it is cleared first and drawn again after. */
  print(stream: NodeJS.WritableStream, text: string): void {
    this.clear();
    stream.write(text);
    if (this.tty && this.current >= 0 && this.timer) this.draw();
  }

  /** Ends it: the line is cleared (terminal) and a last line says how long it all took. */
  finish(summary = 'done'): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
    this.out.write(`${this.opts.label}: ${summary} in ${clock(this.now() - this.startedAt)}\n`);
  }

  /** Stops updating and clears the line, saying nothing (an interrupted run says why itself). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
  }

  private draw(): void {
    const cols = (this.out as NodeJS.WriteStream).columns ?? 120;
    this.out.write(`\r\x1b[2K${this.line().slice(0, Math.max(20, cols - 1))}`);
    this.shown = true;
  }

  private clear(): void {
    if (this.tty && this.shown) this.out.write('\r\x1b[2K');
    this.shown = false;
  }
}
