// A hashed timer wheel (GUIDE §5): items filed in slot floor(deadline/tick) % N,
// fired when the wheel passes their slot. Cancellation is lazy: the owner re-checks
// its real deadline when fired and files itself again if it moved. An item the
// owner calls dead is dropped the next time the wheel passes its slot (within a
// turn), not kept until its far deadline: a closed connection filed for its 2 h
// keepalive otherwise stayed referenced, with its stream, for 2 h.
// next() says when advance() next has something to do, so the caller arms one
// timer for then instead of ticking (an idle gateway sleeps).
export class TimerWheel<T> {
  private readonly slots: T[][];
  private readonly dues: number[][];
  private cursor = -1; // last tick index processed
  /** Items filed. */
  private count = 0;
  /**
   * A lower bound of the tick at which the earliest filed item fires (the
   * tick, not the deadline: the wheel fires an item when it passes its slot).
   * Exact after advance(); lowered by schedule(); stale-low after lazy
   * cancellation, which costs one early wake, never a late one.
   */
  private nextTick = Infinity;

  constructor(
    private readonly tickMs = 10,
    private readonly size = 4096,
    private readonly dead: ((item: T) => boolean) | null = null,
    /** Called when next() moves earlier (an item filed before every other): re-arm the caller's timer. */
    private readonly onSooner: ((at: number) => void) | null = null,
  ) {
    this.slots = Array.from({ length: size }, () => []);
    this.dues = Array.from({ length: size }, () => []);
  }

  schedule(item: T, deadline: number): void {
    if (deadline === Infinity) return;
    // The first tick at or after the deadline: when the wheel reaches it, now >=
    // deadline, so the item fires then. (Flooring filed it in a tick the wheel
    // could reach a little before the deadline; it then waited a full turn.)
    let tick = Math.ceil(deadline / this.tickMs);
    if (this.cursor >= 0 && tick <= this.cursor) tick = this.cursor + 1;
    const i = tick % this.size;
    this.slots[i].push(item);
    this.dues[i].push(deadline);
    this.count++;
    if (tick < this.nextTick) {
      this.nextTick = tick;
      this.onSooner?.(tick * this.tickMs);
    }
  }

  /**
   * When advance() next fires or drops something: Infinity with nothing filed.
   * With items filed it is at most one turn away, so a dead item is dropped
   * within two turns even when nothing else wakes the wheel.
   */
  next(): number {
    if (this.count === 0) return Infinity;
    const turn = this.cursor < 0 ? Infinity : (this.cursor + this.size) * this.tickMs;
    return Math.min(this.nextTick * this.tickMs, turn);
  }

  /**
   * Drops every item the owner calls dead, now, in every slot: O(items filed).
   * For a pause before a full GC (an idle gateway after a crowd), when waiting
   * up to two turns for the wheel to pass each slot would keep their memory.
   */
  purgeDead(): number {
    if (this.dead === null) return 0;
    let dropped = 0;
    for (let i = 0; i < this.size; i++) {
      const items = this.slots[i];
      if (items.length === 0) continue;
      const dues = this.dues[i];
      let w = 0;
      for (let k = 0; k < items.length; k++) {
        if (this.dead(items[k])) continue;
        items[w] = items[k];
        dues[w++] = dues[k];
      }
      dropped += items.length - w;
      items.length = w;
      dues.length = w;
    }
    this.count -= dropped;
    return dropped;
  }

  /** Fires every item whose slot the wheel passes; far-future items go round again. */
  advance(now: number, fire: (item: T) => void): void {
    const target = Math.floor(now / this.tickMs);
    if (this.cursor < 0) this.cursor = target - 1;
    // Never walk more than one full turn: everything is visited by then.
    let from = this.cursor + 1;
    if (target - from >= this.size) from = target - this.size + 1;
    const wasDue = this.nextTick <= target;
    // Items fired below may file themselves again (schedule lowers nextTick); the rest is rescanned after.
    if (wasDue) this.nextTick = Infinity;
    for (let tick = from; tick <= target; tick++) {
      const i = tick % this.size;
      const items = this.slots[i];
      if (items.length === 0) continue;
      const dues = this.dues[i];
      this.slots[i] = [];
      this.dues[i] = [];
      this.count -= items.length;
      for (let k = 0; k < items.length; k++) {
        if (dues[k] <= now) fire(items[k]);
        else if (this.dead === null || !this.dead(items[k])) {
          this.slots[i].push(items[k]);
          this.dues[i].push(dues[k]);
          this.count++;
        }
      }
    }
    this.cursor = target;
    if (wasDue) this.rescan();
  }

  /**
   * nextTick, exactly: the earliest tick among filed items, walking forward
   * from the cursor and stopping at the first slot past the best found. At most
   * one turn of slots; only after an advance that had something due.
   */
  private rescan(): void {
    let best = this.nextTick;
    if (this.count === 0) return;
    for (let tick = this.cursor + 1; tick <= this.cursor + this.size && tick < best; tick++) {
      const dues = this.dues[tick % this.size];
      for (let k = 0; k < dues.length; k++) {
        // an item in this slot fires at this tick or a whole number of turns later
        const at = Math.max(tick, Math.ceil(dues[k] / this.tickMs));
        if (at < best) best = at;
      }
    }
    this.nextTick = best;
  }
}
