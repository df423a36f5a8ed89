// TxRing (src/tun/tx-ring.ts): the JS side of the TUN writer thread, against a
// fake writer that keeps submitted banks queued the way tx-thread.c does: in
// ring order, the caller waiting (a stall) when every bank is queued.
import t from 'tap';
import { TxRing } from '../../../src/tun/tx-ring.js';

/** A writer thread in miniature: banks queue until drain(); submit() drains the oldest when the ring is full. */
class FakeWriter {
  readonly queue: { bank: number; count: number }[] = [];
  readonly written: number[] = [];
  stalls = 0;
  nextBank = 0;
  failNext: Error | null = null;
  ring!: TxRing;

  constructor(private readonly banks: number) {}

  submit = (bank: number, count: number): number => {
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
    if (bank !== this.nextBank) throw new Error(`bank ${bank} out of order, expected ${this.nextBank}`);
    if (this.queue.some((q) => q.bank === bank)) throw new Error(`bank ${bank} submitted while still queued`);
    this.nextBank = (bank + 1) % this.banks;
    this.queue.push({ bank, count });
    if (this.queue.length === this.banks) {
      this.stalls++;
      this.drain(1);
    }
    return count;
  };

  /** Write the oldest n queued banks: the first byte of each packet is its sequence number. */
  drain(n = Infinity): void {
    while (n-- > 0 && this.queue.length > 0) {
      const { bank, count } = this.queue.shift()!;
      const slab = this.ring.banks[bank];
      for (let i = 0; i < count; i++) this.written.push(slab.slab[i * slab.slotSize]);
    }
  }
}

function ringWith(banks: number, capacity: number): { ring: TxRing; w: FakeWriter } {
  const w = new FakeWriter(banks);
  const ring = new TxRing(1500, capacity, banks, w.submit);
  w.ring = ring;
  return { ring, w };
}

function send(ring: TxRing, seq: number): void {
  ring.txSlot()[0] = seq;
  ring.commitTx(60);
}

t.test('packets keep their order across banks, flushes and automatic flushes', async (t) => {
  const { ring, w } = ringWith(3, 4);
  let seq = 0;
  for (const burst of [1, 3, 4, 5, 9, 2, 13, 1]) {
    for (let i = 0; i < burst; i++) send(ring, seq++ & 0xff);
    ring.flushTx();
    w.drain(1); // the writer lags one bank behind at times
  }
  w.drain();
  t.same(
    w.written,
    Array.from({ length: seq }, (_, i) => i & 0xff),
  );
  const s = ring.stats;
  t.equal(s.packets, seq);
  t.equal(s.drops, 0);
  t.equal(s.bytes, seq * 60);
  t.ok(s.autoFlushes >= 4, 'bursts above the capacity were handed over before the caller flushed');
});

t.test('a full ring waits for the writer instead of dropping or reusing a queued bank', async (t) => {
  const { ring, w } = ringWith(2, 2);
  for (let seq = 0; seq < 20; seq++) send(ring, seq); // the writer never drains on its own
  ring.flushTx();
  t.ok(w.stalls > 0, 'submit waited');
  w.drain();
  t.same(
    w.written,
    Array.from({ length: 20 }, (_, i) => i),
  );
  t.equal(ring.stats.drops, 0);
});

t.test('a submit that throws counts its packets as drops and keeps the ring order', async (t) => {
  const { ring, w } = ringWith(2, 8);
  send(ring, 1);
  ring.flushTx();
  send(ring, 2);
  send(ring, 3);
  w.failNext = Object.assign(new Error('write EBADF'), { code: 'EBADF' });
  t.throws(() => ring.flushTx(), { code: 'EBADF' });
  t.equal(ring.pending, 0, 'the failed bank is empty again');
  send(ring, 4);
  ring.flushTx(); // the same bank as the failed one: the fake would throw if out of order
  w.drain();
  t.same(w.written, [1, 4]);
  t.equal(ring.stats.drops, 2);
  t.equal(ring.stats.packets, 2);
});

t.test('discard forgets the unflushed packets only', async (t) => {
  const { ring, w } = ringWith(2, 8);
  send(ring, 1);
  ring.flushTx();
  send(ring, 2);
  ring.discard();
  ring.flushTx();
  w.drain();
  t.same(w.written, [1]);
  t.equal(ring.stats.drops, 1);
});

t.test('flushing nothing submits nothing; banks out of range are refused', async (t) => {
  const { ring, w } = ringWith(2, 8);
  t.equal(ring.flushTx(), 0);
  t.equal(w.queue.length, 0);
  t.throws(() => new TxRing(1500, 8, 1, w.submit), RangeError);
  t.throws(() => new TxRing(1500, 8, 65, w.submit), RangeError);
});
