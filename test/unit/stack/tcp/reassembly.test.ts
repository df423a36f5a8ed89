// Out-of-order bytes as merged runs: only new bytes are kept, runs merge when
// a hole fills, the runs are the SACK blocks (the latest segment's first),
// draining skips what the in-order segment already delivered, and the store is
// bounded in holes and pieces. Sequence numbers near zero and across the wrap.
import t from 'tap';
import { Reassembly, type InOrderSink } from '../../../../src/stack/tcp/reassembly.js';
import { ISNS, add, bytes } from './harness.js';

class Sink implements InOrderSink {
  got: Buffer[] = [];
  constructor(public rcvNxt: number) {}
  deliver(b: Buffer, off: number, len: number): void {
    this.got.push(Buffer.from(b.subarray(off, off + len)));
    this.rcvNxt = add(this.rcvNxt, len);
  }
  get all(): Buffer {
    return Buffer.concat(this.got);
  }
}

function blocks(r: Reassembly, base: number, max = 4): number[][] {
  const out = new Uint32Array(8);
  const n = r.fillSack(out, max);
  const res: number[][] = [];
  for (let i = 0; i < n; i++) res.push([(out[2 * i] - base) >>> 0, (out[2 * i + 1] - base) >>> 0]);
  return res;
}

for (const [label, base] of ISNS.map(([l, irs]) => [l, irs] as const)) {
  const data = bytes(20_000, 3);
  const at = (k: number) => add(base, k);
  const put = (r: Reassembly, from: number, to: number) => r.add(at(from), data, from, to - from);

  t.test(`${label}: runs merge, SACK blocks are the runs with the latest first`, async (t) => {
    const r = new Reassembly();
    t.ok(put(r, 2000, 3000));
    t.ok(put(r, 5000, 6000));
    t.same(
      blocks(r, base),
      [
        [5000, 6000],
        [2000, 3000],
      ],
      'the latest segment first (RFC 2018 §4)',
    );
    t.ok(put(r, 3000, 4000));
    t.same(
      blocks(r, base),
      [
        [2000, 4000],
        [5000, 6000],
      ],
      'a segment that extends a run grows it',
    );
    t.ok(put(r, 4000, 5000));
    t.equal(r.count, 1, 'the hole between two runs filled: one run');
    t.same(blocks(r, base), [[2000, 6000]]);
    t.equal(r.bytes, 4000);
    t.same(blocks(r, base, 1).length, 1, 'at most max blocks');
  });

  t.test(`${label}: only new bytes are kept; duplicates and overlaps cost nothing twice`, async (t) => {
    const r = new Reassembly();
    put(r, 1000, 2000);
    put(r, 1000, 2000);
    put(r, 1500, 1800);
    t.equal(r.bytes, 1000, 'duplicates add no bytes');
    put(r, 500, 2500);
    t.equal(r.bytes, 2000, 'an overlap on both sides adds only its new parts');
    t.same(blocks(r, base), [[500, 2500]]);
    put(r, 3000, 3100);
    put(r, 2900, 3200);
    t.same(blocks(r, base), [
      [2900, 3200],
      [500, 2500],
    ]);
    put(r, 2400, 3050);
    t.same(blocks(r, base), [[500, 3200]], 'a segment bridging two runs merges them');
    t.equal(r.bytes, 2700);
    const s = new Sink(at(500));
    r.drain(s);
    t.ok(s.all.equals(data.subarray(500, 3200)), 'the bytes come out exactly, in order');
    t.equal(r.bytes, 0);
    t.equal(r.count, 0);
  });

  t.test(`${label}: draining skips what the in-order segment already delivered, and stops at a hole`, async (t) => {
    const r = new Reassembly();
    put(r, 1000, 2000);
    put(r, 3000, 4000);
    const s = new Sink(at(1500)); // an in-order segment covered [.., 1500)
    r.drain(s);
    t.ok(s.all.equals(data.subarray(1500, 2000)));
    t.equal(s.rcvNxt, at(2000));
    t.equal(r.count, 1, 'the run after the hole stays');
    t.same(blocks(r, base), [[3000, 4000]]);
    const s2 = new Sink(at(4500)); // one segment covered all of it
    r.drain(s2);
    t.equal(s2.got.length, 0, 'nothing delivered twice');
    t.equal(r.bytes, 0);
  });

  t.test(`${label}: bounded: 64 holes, then a new hole is refused; merging is always taken`, async (t) => {
    const r = new Reassembly();
    for (let k = 0; k < 64; k++) t.ok(put(r, 100 + k * 200, 150 + k * 200), `run ${k}`);
    t.equal(r.count, 64);
    t.notOk(put(r, 100 + 64 * 200, 150 + 64 * 200), 'a 65th hole is refused');
    t.ok(put(r, 150, 300), 'filling a hole is taken');
    t.equal(r.count, 63);
    t.ok(put(r, 100 + 64 * 200, 150 + 64 * 200), 'room again');
  });

  t.test(`${label}: a random arrival order with duplicates and overlaps delivers the stream exactly`, async (t) => {
    let seed = 7;
    const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
    for (let round = 0; round < 20; round++) {
      const r = new Reassembly();
      const s = new Sink(base);
      const segs: [number, number][] = [];
      for (let off = 0; off < data.length;) {
        const len = 1 + rnd(1500);
        segs.push([off, Math.min(data.length, off + len)]);
        off += len;
      }
      // shuffle, and add some overlapping re-segmented copies
      for (let i = segs.length - 1; i > 0; i--) {
        const j = rnd(i + 1);
        [segs[i], segs[j]] = [segs[j], segs[i]];
      }
      for (let k = 0; k < 20; k++) {
        const a = rnd(data.length - 100);
        segs.splice(rnd(segs.length), 0, [a, a + 1 + rnd(3000)]);
      }
      for (const [from, to0] of segs) {
        const to = Math.min(to0, data.length);
        const rel = (s.rcvNxt - base) >>> 0;
        if (to <= rel) continue;
        if (from <= rel) {
          s.deliver(data, rel, to - rel); // in order: the receiver delivers it, then drains
          r.drain(s);
        } else {
          r.add(at(from), data, from, to - from);
        }
      }
      if (!s.all.equals(data)) return t.fail(`round ${round}: ${s.all.length} bytes, not the stream`);
      t.equal(r.bytes, 0, `round ${round}: nothing left held`);
    }
  });
}

t.test('bounded in pieces: a flood of 1-byte segments past a hole stops at 2048 stored', async (t) => {
  const r = new Reassembly();
  const one = Buffer.from([1]);
  let taken = 0;
  for (let k = 0; k < 5000; k++) if (r.add(1000 + 2 * k + 1, one, 0, 1)) taken++; // every other byte: a new hole each
  t.ok(taken <= 64, `holes bounded (${taken})`);
  const r2 = new Reassembly();
  taken = 0;
  for (let k = 0; k < 5000; k++) if (r2.add(1000 + k, one, 0, 1)) taken++; // contiguous: one run, one piece each
  t.equal(taken, 2048, 'pieces bounded');
  t.equal(r2.count, 1);
});
