// A hashed timer wheel (GUIDE §5): items filed in slot floor(deadline/tick) % N,
// fired when the wheel passes their slot. Cancellation is lazy: the owner re-checks
// its real deadline when fired and files itself again if it moved. An item the
// owner calls dead is dropped the next time the wheel passes its slot (within a
// turn), not kept until its far deadline: a closed connection filed for its 2 h
// keepalive otherwise stayed referenced, with its stream, for 2 h.
export class TimerWheel<T> {
  private readonly slots: T[][];
  private readonly dues: number[][];
  private cursor = -1; // last tick index processed

  constructor(
    private readonly tickMs = 10,
    private readonly size = 4096,
    private readonly dead: ((item: T) => boolean) | null = null,
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
  }

  /** Fires every item whose slot the wheel passes; far-future items go round again. */
  advance(now: number, fire: (item: T) => void): void {
    const target = Math.floor(now / this.tickMs);
    if (this.cursor < 0) this.cursor = target - 1;
    // Never walk more than one full turn: everything is visited by then.
    let from = this.cursor + 1;
    if (target - from >= this.size) from = target - this.size + 1;
    for (let tick = from; tick <= target; tick++) {
      const i = tick % this.size;
      const items = this.slots[i];
      if (items.length === 0) continue;
      const dues = this.dues[i];
      this.slots[i] = [];
      this.dues[i] = [];
      for (let k = 0; k < items.length; k++) {
        if (dues[k] <= now) fire(items[k]);
        else if (this.dead === null || !this.dead(items[k])) {
          this.slots[i].push(items[k]);
          this.dues[i].push(dues[k]);
        }
      }
    }
    this.cursor = target;
  }
}
