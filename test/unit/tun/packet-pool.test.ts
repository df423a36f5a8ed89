import t from 'tap';
import { RxSlab, TxSlab, slotSizeFor, SLOT_ALIGN, type TxWriter } from '../../../src/tun/packet-pool.js';

t.test('slotSizeFor rounds up to the alignment and checks the mtu', async (t) => {
  t.equal(slotSizeFor(1500), 1536);
  t.equal(slotSizeFor(1536), 1536);
  t.equal(slotSizeFor(65520), 65536);
  t.equal(slotSizeFor(68) % SLOT_ALIGN, 0);
  t.throws(() => slotSizeFor(67), RangeError);
  t.throws(() => slotSizeFor(65536), RangeError);
  t.throws(() => slotSizeFor(1500.5), RangeError);
});

t.test('RxSlab: slots are fixed views over one slab', async (t) => {
  const rx = new RxSlab(1536, 4);
  t.equal(rx.slots.length, 4);
  t.equal(rx.lengths.length, 4);
  t.equal(rx.slab.length, 1536 * 4);
  for (let i = 0; i < 4; i++) {
    t.equal(rx.slots[i].buffer, rx.slab.buffer, 'same memory');
    t.equal(rx.slots[i].byteOffset, rx.slab.byteOffset + i * 1536);
    t.equal(rx.slots[i].length, 1536);
  }
  rx.slab[1536 * 2 + 5] = 0xab;
  t.equal(rx.slots[2][5], 0xab, 'a write to the slab shows in the slot view');
});

t.test('RxSlab.push copies packets into consecutive slots', async (t) => {
  const rx = new RxSlab(128, 2);
  t.ok(rx.push(Buffer.from([1, 2, 3])));
  t.ok(rx.push(Buffer.from([9, 8, 7, 6, 5]), 1, 3));
  t.equal(rx.count, 2);
  t.same([...rx.lengths], [3, 3]);
  t.same([...rx.slots[0].subarray(0, 3)], [1, 2, 3]);
  t.same([...rx.slots[1].subarray(0, 3)], [8, 7, 6]);
  t.ok(rx.full);
  t.notOk(rx.push(Buffer.from([1])), 'full');
  rx.reset();
  t.equal(rx.count, 0);
  t.notOk(rx.push(Buffer.alloc(129)), 'longer than a slot');
  t.notOk(rx.push(Buffer.alloc(0)), 'empty');
});

function recorder(accept = Infinity): { writer: TxWriter; calls: Buffer[][] } {
  const calls: Buffer[][] = [];
  const writer: TxWriter = (slab, lengths, count, slotSize) => {
    const pk: Buffer[] = [];
    for (let i = 0; i < count; i++) pk.push(Buffer.from(slab.subarray(i * slotSize, i * slotSize + lengths[i])));
    calls.push(pk);
    return Math.min(count, accept);
  };
  return { writer, calls };
}

t.test('TxSlab: txSlot/commitTx/flushTx writes the committed packets in one call', async (t) => {
  const { writer, calls } = recorder();
  const tx = new TxSlab(1500, 8, writer);
  t.equal(tx.slotSize, 1536);
  const s0 = tx.txSlot();
  t.equal(s0.length, 1500, 'slot view is mtu long');
  t.equal(tx.txSlot(), s0, 'same slot until committed');
  s0.write('hello');
  tx.commitTx(5);
  const s1 = tx.txSlot();
  t.not(s1, s0);
  t.equal(s1.byteOffset - s0.byteOffset, 1536);
  s1.write('world!');
  tx.commitTx(6);
  t.equal(tx.pending, 2);
  t.equal(tx.flushTx(), 2);
  t.equal(calls.length, 1);
  t.same(calls[0].map(String), ['hello', 'world!']);
  t.equal(tx.pending, 0);
  t.equal(tx.flushTx(), 0, 'nothing to flush: no call');
  t.equal(calls.length, 1);
  t.equal(tx.txSlot(), s0, 'reset to the first slot');
  t.same(tx.stats, { packets: 2, bytes: 11, drops: 0, flushes: 1, autoFlushes: 0 });
});

t.test('TxSlab flushes by itself when the slab is full', async (t) => {
  const { writer, calls } = recorder();
  const tx = new TxSlab(100, 3, writer);
  for (let i = 0; i < 7; i++) {
    const s = tx.txSlot();
    s[0] = i;
    tx.commitTx(1 + i);
  }
  t.equal(calls.length, 2, 'two automatic flushes');
  tx.flushTx();
  t.same(
    calls.map((c) => c.map((p) => p[0])),
    [[0, 1, 2], [3, 4, 5], [6]],
  );
  t.same(
    calls.flat().map((p) => p.length),
    [1, 2, 3, 4, 5, 6, 7],
  );
  t.equal(tx.stats.autoFlushes, 2);
  t.equal(tx.stats.flushes, 3);
  t.equal(tx.stats.packets, 7);
  t.equal(tx.stats.bytes, 28);
});

t.test('TxSlab counts what the writer did not take as drops', async (t) => {
  const { writer } = recorder(1);
  const tx = new TxSlab(100, 4, writer);
  for (let i = 0; i < 3; i++) {
    tx.txSlot();
    tx.commitTx(10 + i);
  }
  t.equal(tx.flushTx(), 1);
  t.equal(tx.stats.drops, 2);
  t.equal(tx.stats.packets, 1);
  t.equal(tx.stats.bytes, 10);
  t.equal(tx.pending, 0);
});

t.test('TxSlab: a throwing writer still resets and counts drops', async (t) => {
  const tx = new TxSlab(100, 4, () => {
    throw new Error('EBADF');
  });
  tx.txSlot();
  tx.commitTx(10);
  t.throws(() => tx.flushTx(), /EBADF/);
  t.equal(tx.pending, 0);
  t.equal(tx.stats.drops, 1);
});

t.test('TxSlab rejects bad lengths', async (t) => {
  const tx = new TxSlab(100, 1, recorder().writer);
  tx.txSlot();
  t.throws(() => tx.commitTx(0), RangeError);
  t.throws(() => tx.commitTx(101), RangeError);
  t.throws(() => tx.commitTx(1.5), RangeError);
  t.throws(() => tx.commitTx(NaN), RangeError);
  tx.commitTx(100);
  t.throws(() => tx.commitTx(1), RangeError, 'full without txSlot()');
  tx.discard();
  t.equal(tx.stats.drops, 1);
  t.equal(tx.pending, 0);
});
