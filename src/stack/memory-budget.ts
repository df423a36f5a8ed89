// The gateway-wide budget on bytes buffered in TCP connections (send queues,
// out-of-order and undelivered receive data). Over it: new SYNs are refused
// (syn-gate), writes from upstream pause and receive windows stop re-opening,
// while each flow keeps a floor so none starves; paused flows are woken once
// it is under again. O(1) per operation: a flow moves only its delta into the
// total.
import type { StackCounters } from './stack-options.js';

export interface BudgetedFlow {
  closed: boolean;
  /** This flow's share of counters.tcpBuffered. */
  accounted: number;
  /** consumed() held back while over the budget: the client's window stays shut. */
  budgetHeldConsumed: number;
  /** A write refused for the budget: retried when memory frees up. */
  budgetBlocked: boolean;
  /** Bytes its connection holds now. */
  readonly bufferedBytes: number;
}

export class MemoryBudget<F extends BudgetedFlow> {
  /** Flows paused by the budget (a write refused or a window held shut). */
  private readonly waiters: F[] = [];
  private waking = false;

  constructor(
    /** Bytes; 0 = no budget. */
    private limit: number,
    private readonly floorPerFlow: number,
    private readonly counters: StackCounters,
    /** A paused flow may go on: retry its write (blocked), then release its held consumed bytes. */
    private readonly resume: (flow: F, blocked: boolean, held: number) => void,
  ) {}

  /** A new limit (a reload): flows paused under the old one go on at once if it is no longer exceeded. */
  setLimit(bytes: number): void {
    this.limit = bytes;
    if (this.waiters.length > 0 && !this.over() && !this.waking) {
      this.waking = true;
      queueMicrotask(this.wake);
    }
  }

  over(): boolean {
    return this.limit > 0 && this.counters.tcpBuffered > this.limit;
  }

  /** A write from upstream may go in; false pauses it until memory frees up. */
  mayWrite(flow: F): boolean {
    if (!this.over() || flow.accounted < this.floorPerFlow) return true;
    // The stream keeps the chunk and retries when woken.
    if (!flow.budgetBlocked) {
      flow.budgetBlocked = true;
      this.waiters.push(flow);
    }
    return false;
  }

  /** The app took n bytes; false keeps the client's window shut (the bytes themselves are gone from memory). */
  mayConsume(flow: F, n: number): boolean {
    if (!this.over() || flow.accounted < this.floorPerFlow) return true;
    if (flow.budgetHeldConsumed === 0) this.waiters.push(flow);
    flow.budgetHeldConsumed += n;
    this.account(flow);
    return false;
  }

  /** Moves the flow's delta into the total; wakes paused flows once under budget. */
  account(flow: F): void {
    // Held-back consumed bytes are already freed, so they do not count.
    const bytes = flow.closed ? 0 : Math.max(0, flow.bufferedBytes - flow.budgetHeldConsumed);
    this.counters.tcpBuffered += bytes - flow.accounted;
    flow.accounted = bytes;
    if (this.waiters.length > 0 && !this.over() && !this.waking) {
      this.waking = true;
      queueMicrotask(this.wake);
    }
  }

  /** The flow is gone: its bytes leave the total. */
  release(flow: F): void {
    this.counters.tcpBuffered -= flow.accounted;
    flow.accounted = 0;
  }

  private readonly wake = () => {
    this.waking = false;
    for (const f of this.waiters.splice(0)) {
      if (f.closed) continue;
      const blocked = f.budgetBlocked;
      f.budgetBlocked = false;
      const held = f.budgetHeldConsumed;
      f.budgetHeldConsumed = 0;
      this.resume(f, blocked, held);
    }
  };
}
