import t from 'tap';
import { MemoryTun, memoryTunPair } from '../../../src/tun/memory-tun.js';
import type { RxBatch, TunDevice } from '../../../src/tun/tun-device.js';

const pkt = (...bytes: number[]) => Buffer.from(bytes);
const copyOut = (b: RxBatch) => {
  const out: Buffer[] = [];
  for (let i = 0; i < b.count; i++) out.push(Buffer.from(b.slots[i].subarray(0, b.lengths[i])));
  return out;
};
const turn = () => new Promise<void>((r) => setImmediate(r));

t.test('inject before start is queued, then delivered asynchronously in batches', async (t) => {
  const dev: MemoryTun = new MemoryTun({ mtu: 1500, batch: 2 });
  const batches: Buffer[][] = [];
  for (let i = 1; i <= 5; i++) t.ok(dev.inject(pkt(i, i, i)));
  t.equal(dev.queued, 5);
  dev.start((b) => batches.push(copyOut(b)));
  t.equal(batches.length, 0, 'not inside start()');
  for (let i = 0; i < 5 && dev.queued > 0; i++) await turn();
  t.same(
    batches.map((b) => b.map((p) => p[0])),
    [[1, 2], [3, 4], [5]],
  );
  t.same(dev.stats().rx.packets, 5);
  t.equal(dev.stats().rx.batches, 3);
});

t.test('one batch per turn lets other work interleave', async (t) => {
  const dev = new MemoryTun({ batch: 1 });
  const seen: string[] = [];
  dev.start(() => seen.push('batch'));
  dev.inject(pkt(1));
  dev.inject(pkt(2));
  setImmediate(() => seen.push('other'));
  await turn();
  await turn();
  await turn();
  t.same(seen.slice(0, 3), ['batch', 'other', 'batch']);
});

t.test('sync mode delivers inside inject()', async (t) => {
  const dev = new MemoryTun({ sync: true });
  const got: number[] = [];
  dev.start((b) => got.push(b.count));
  dev.inject(pkt(1, 2));
  t.same(got, [1]);
});

t.test('packets the stack writes are captured and reported', async (t) => {
  const dev = new MemoryTun({ mtu: 100, txBatch: 2 });
  const heard: string[] = [];
  dev.onTx((p) => heard.push(p.toString()));
  for (const s of ['a', 'bb', 'ccc']) {
    const slot = dev.txSlot();
    slot.write(s);
    dev.commitTx(s.length);
  }
  t.same(heard, ['a', 'bb'], 'a full TX slab flushed by itself');
  dev.flushTx();
  t.same(heard, ['a', 'bb', 'ccc']);
  const cap = dev.takeTx();
  t.same(cap.map(String), ['a', 'bb', 'ccc']);
  t.same(dev.takeTx(), []);
  // captured packets are copies: reusing the slot does not change them
  dev.txSlot().write('zzz');
  t.equal(cap[0].toString(), 'a');
});

t.test('drops: too long, empty, queue full, after close', async (t) => {
  const dev = new MemoryTun({ mtu: 100, queueLimit: 2 });
  t.notOk(dev.inject(Buffer.alloc(101)));
  t.notOk(dev.inject(Buffer.alloc(0)));
  t.ok(dev.inject(pkt(1)));
  t.ok(dev.inject(pkt(2)));
  t.notOk(dev.inject(pkt(3)), 'queue full');
  t.equal(dev.rxDrops, 3);
  dev.close();
  t.equal(dev.rxDrops, 5, 'queued packets dropped by close');
  t.notOk(dev.inject(pkt(4)));
  dev.close();
  t.throws(() => dev.start(() => {}), { code: 'ERR_TUN_CLOSED' });
});

t.test('inject copies: the caller may reuse its buffer', async (t) => {
  const dev = new MemoryTun({ sync: true });
  const got: Buffer[] = [];
  const b = pkt(7, 7);
  dev.inject(b);
  b.fill(0);
  dev.start((x) => got.push(...copyOut(x)));
  t.same([...got[0]], [7, 7]);
});

t.test('pause holds delivery, resume restarts it', async (t) => {
  const dev = new MemoryTun({ sync: true });
  const got: number[] = [];
  dev.start((b) => got.push(b.count));
  dev.pause();
  dev.inject(pkt(1));
  t.same(got, []);
  dev.resume();
  t.same(got, [1]);
});

t.test('start twice is an error', async (t) => {
  const dev = new MemoryTun();
  dev.start(() => {});
  t.throws(() => dev.start(() => {}), { code: 'ERR_TUN_STARTED' });
});

function echoHandler(dev: TunDevice) {
  return (b: RxBatch) => {
    for (let i = 0; i < b.count; i++) {
      if (b.slots[i][0] >= 3) continue; // stop after three round trips
      const s = dev.txSlot();
      b.slots[i].copy(s, 0, 0, b.lengths[i]);
      s[0]++;
      dev.commitTx(b.lengths[i]);
    }
    dev.flushTx();
  };
}

for (const sync of [false, true]) {
  t.test(`a pair carries packets both ways (sync=${sync})`, async (t) => {
    const [a, b] = memoryTunPair(1500, { sync });
    const atA: number[] = [];
    const atB: number[] = [];
    const ha = echoHandler(a);
    const hb = echoHandler(b);
    a.start((batch) => {
      for (let i = 0; i < batch.count; i++) atA.push(batch.slots[i][0]);
      ha(batch);
    });
    b.start((batch) => {
      for (let i = 0; i < batch.count; i++) atB.push(batch.slots[i][0]);
      hb(batch);
    });
    const s = a.txSlot();
    s[0] = 0;
    s[1] = 42;
    a.commitTx(2);
    a.flushTx();
    for (let i = 0; i < 20 && atA.length + atB.length < 4; i++) await turn();
    t.same(atB, [0, 2]);
    t.same(atA, [1, 3]);
    t.equal(a.stats().tx.packets, 2);
    t.equal(b.stats().tx.packets, 2);
    t.same(a.takeTx(), [], 'a pair does not capture');
  });
}

t.test('sync pair: a reply sent from inside a batch does not recurse', async (t) => {
  const [a, b] = memoryTunPair(1500, { sync: true });
  let depth = 0;
  let maxDepth = 0;
  let rounds = 0;
  const bounce = (dev: TunDevice) => (batch: RxBatch) => {
    depth++;
    maxDepth = Math.max(maxDepth, depth);
    if (rounds++ < 50) {
      dev.txSlot()[0] = batch.slots[0][0];
      dev.commitTx(1);
      dev.flushTx();
    }
    depth--;
  };
  a.start(bounce(a));
  b.start(bounce(b));
  a.txSlot()[0] = 1;
  a.commitTx(1);
  a.flushTx();
  t.equal(rounds, 51);
  t.ok(maxDepth <= 2, `handler depth ${maxDepth}`);
});
