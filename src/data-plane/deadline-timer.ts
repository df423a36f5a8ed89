// One timer, armed for the next deadline only (issue 16): the stack's timers
// and the UDP sweep run when something is due, never on a fixed tick, so an
// idle gateway sleeps. run() does the work due at `now`; next() says when the
// next work is due (Infinity: nothing, wait for a packet or a sooner()).
// Called after each batch (arm) and by the stack when a connection files a
// timer earlier than the armed one (sooner). Node's timers are whole
// milliseconds on a loop clock read before the callback: a wake that comes a
// little early finds nothing due and arms again for the rest.
export class DeadlineTimer {
  private timer: NodeJS.Timeout | null = null;
  /** The deadline the timer is armed for (Infinity: not armed). */
  private armedFor = Infinity;
  /** Wakes, for the status counters (an idle gateway should count none). */
  wakes = 0;

  constructor(
    private readonly clock: () => number,
    private readonly run: (now: number) => void,
    private readonly next: () => number,
  ) {}

  /** After a batch or a wake: arm for next() if it is sooner than what is armed. */
  arm(): void {
    this.sooner(this.next());
  }

  /** Something is due by `at`: make sure the timer fires by then. */
  sooner(at: number): void {
    if (!(at < this.armedFor)) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(this.fire, Math.max(0, Math.ceil(at - this.clock())));
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedFor = -Infinity; // never armed again
  }

  private readonly fire = () => {
    this.timer = null;
    this.armedFor = Infinity;
    this.wakes++;
    this.run(this.clock());
    this.arm();
  };
}
