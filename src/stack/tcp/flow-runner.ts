// Runs a flow's connection one operation at a time, each a named method with
// the clock: a segment, the layer above's accept/abort, the stream's write,
// consumed and close, and the timers. Afterwards the connection's next
// deadline is filed on the timer wheel (GUIDE §5: one deadline per
// connection, cancelled lazily) and its memory in the budget.
// A stream callback that re-enters while a connection runs is deferred until
// it returns: consumed() is summed, write() refused and retried, the rest
// queued. An exception resets only that flow (counted as internal_error).
import { Drop, type DropCounters } from '../drop-counters.js';
import type { Segment } from '../contracts.js';
import type { MemoryBudget } from '../memory-budget.js';
import type { StackClock } from '../stack-clock.js';
import { TimerWheel } from '../timer-wheel.js';
import type { TcpFlow } from './tcp-flow.js';

export class FlowRunner {
  /** The flow whose connection runs now: re-entry is deferred. */
  private running: TcpFlow | null = null;
  private readonly deferred: TcpFlow[] = [];
  /** Closed flows leave it when their slot next comes round, not at their far (keepalive) deadline. */
  private readonly wheel: TimerWheel<TcpFlow>;
  /** Flows written to in this turn: their bytes go out in one push, a microtask later. */
  private toPush: TcpFlow[] = [];
  private readonly pushAll = () => {
    const flows = this.toPush;
    this.toPush = [];
    for (const f of flows) {
      f.pushQueued = false;
      if (!f.closed) this.control(f, 'push');
    }
  };
  /** The last internal errors, for the rate-limited log line of the caller. */
  readonly internalErrors: Error[] = [];

  constructor(
    private readonly clock: StackClock,
    private readonly budget: MemoryBudget<TcpFlow>,
    private readonly drops: DropCounters,
    /** A timer was filed before every other: the caller's tick must come no later than `at`. */
    onSooner: ((at: number) => void) | null = null,
  ) {
    this.wheel = new TimerWheel<TcpFlow>(10, 4096, (f) => f.closed, onSooner);
  }

  /** A segment for an existing flow (seg is valid during the call). */
  receive(flow: TcpFlow, seg: Segment, now: number): void {
    this.running = flow;
    try {
      flow.conn.receive(seg, now);
    } catch (e) {
      return this.failed(flow, e as Error);
    }
    this.done(flow);
  }

  /** The layer above accepted: SYN-ACK (or a cookie connection's held bytes). */
  accept(flow: TcpFlow): void {
    this.control(flow, 'accept');
  }

  /** RST to the client (or RST|ACK to a SYN not yet answered). */
  abort(flow: TcpFlow): void {
    this.control(flow, 'abort');
  }

  /** Forget a connection not yet answered without a word (a full SYN queue: the client retries its SYN). */
  dropSilently(flow: TcpFlow): void {
    this.control(flow, 'drop');
  }

  /** Bytes for the client; returns how many the send buffer took (0: retry on writableAgain). */
  write(flow: TcpFlow, data: Buffer): number {
    if (this.running !== null) {
      // Refused for now; tell the stream to retry once the connection is free.
      queueMicrotask(() => flow.stream?.writableAgain());
      return 0;
    }
    // Over the budget: the stream keeps the chunk and retries when memory frees up.
    if (!this.budget.mayWrite(flow)) return 0;
    const now = this.clock.now();
    this.running = flow;
    let n: number;
    try {
      // Sent a microtask later, all that this turn wrote at once (autocork):
      // an end() right after the last write then sends the FIN with it.
      n = flow.conn.write(data, now, false);
    } catch (e) {
      this.failed(flow, e as Error);
      return 0;
    }
    if (n > 0 && !flow.pushQueued) {
      flow.pushQueued = true;
      if (this.toPush.push(flow) === 1) queueMicrotask(this.pushAll);
    }
    this.done(flow);
    return n;
  }

  /** The app took n delivered bytes: the receive window may open. */
  consumed(flow: TcpFlow, n: number): void {
    if (this.running !== null) {
      if (flow.deferredConsumed === 0) this.deferred.push(flow);
      flow.deferredConsumed += n;
      return;
    }
    if (!this.budget.mayConsume(flow, n)) return;
    const now = this.clock.now();
    this.running = flow;
    try {
      flow.conn.consumed(n, now);
    } catch (e) {
      return this.failed(flow, e as Error);
    }
    this.done(flow);
  }

  /** FIN after the queued data. */
  close(flow: TcpFlow): void {
    this.control(flow, 'close');
  }

  /** Fires the timers due by now (tick). */
  advance(now: number): void {
    this.wheel.advance(now, this.onDue);
  }

  /** When advance() next has something to do (Infinity: no timer filed). */
  nextDeadline(): number {
    return this.wheel.next();
  }

  /** Drops closed flows from the timer wheel at once (before an idle GC): see TimerWheel.purgeDead. */
  purgeClosed(): number {
    return this.wheel.purgeDead();
  }

  /** Files the flow's next deadline: only an earlier one; a later one is re-checked when its slot fires. */
  schedule(flow: TcpFlow): void {
    const d = flow.conn.nextDeadline();
    if (d < flow.wheelDue) {
      flow.wheelDue = d;
      this.wheel.schedule(flow, d);
    }
  }

  /** accept, close, abort, drop, push: from outside a segment, so they come with the clock and wait their turn. */
  private control(flow: TcpFlow, what: 'accept' | 'close' | 'abort' | 'drop' | 'push'): void {
    if (this.running !== null) return queueMicrotask(() => this.control(flow, what));
    const now = this.clock.now();
    const conn = flow.conn;
    this.running = flow;
    try {
      if (what === 'accept') conn.accept(now);
      else if (what === 'push') conn.push(now);
      else if (what === 'close') conn.close(now);
      else conn.abort(now, what === 'drop');
    } catch (e) {
      return this.failed(flow, e as Error);
    }
    this.done(flow);
  }

  private readonly onDue = (flow: TcpFlow) => {
    if (flow.closed) return;
    flow.wheelDue = Infinity;
    const now = this.clock.last;
    if (flow.conn.nextDeadline() > now) return this.schedule(flow);
    this.running = flow;
    try {
      flow.conn.onTimer(now);
    } catch (e) {
      return this.failed(flow, e as Error);
    }
    this.done(flow);
  };

  /** After an operation: file the next deadline and the memory, then run what was deferred. */
  private done(flow: TcpFlow): void {
    this.running = null;
    if (!flow.closed) {
      this.schedule(flow);
      this.budget.account(flow);
    }
    if (this.deferred.length > 0) this.runDeferred();
  }

  private runDeferred(): void {
    while (this.deferred.length > 0) {
      const f = this.deferred.pop()!;
      const n = f.deferredConsumed;
      f.deferredConsumed = 0;
      if (n > 0 && !f.closed) this.consumed(f, n);
    }
  }

  /** One guard per operation: a bug resets only this flow. */
  private failed(flow: TcpFlow, err: Error): void {
    this.running = null;
    this.drops.count(Drop.internal_error);
    this.internalErrors.push(err);
    if (this.internalErrors.length > 16) this.internalErrors.shift();
    try {
      flow.conn.abort(this.clock.last);
    } catch {
      // already broken: dropped from the table below
    }
    if (!flow.closed) flow.onClosed('aborted');
  }
}
