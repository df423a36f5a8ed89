// The send buffer against a plain Buffer as the reference: random writes in
// chunks of any size, acknowledgements, and copies at any sequence number,
// sequential (the cursor's fast path) and backwards (retransmissions), across
// the 2^32 wrap; acknowledged chunks are let go.
import t from 'tap';
import { SendBuffer } from '../../../../src/stack/tcp/send-buffer.js';
import { ISNS, add, bytes } from './harness.js';

for (const [label, , iss] of ISNS) {
  t.test(`${label}: copies equal the reference under random writes, ACKs and resends`, async (t) => {
    let seed = 11;
    const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
    const stream = bytes(400_000, 5);
    const first = add(iss, 1);
    const b = new SendBuffer(first);
    let written = 0;
    let acked = 0;
    let sent = 0;
    let mismatches = 0;
    for (let step = 0; step < 3000; step++) {
      const op = rnd(4);
      if (op === 0 && written < stream.length) {
        const n = Math.min(1 + rnd(70_000), stream.length - written);
        b.push(stream.subarray(written, written + n), n);
        written += n;
      } else if (op === 1 && acked < sent) {
        const n = 1 + rnd(sent - acked);
        b.drop(n);
        acked += n;
      } else if (written > acked) {
        // the next segment, or (op 3) a resend from anywhere still held
        const from = op === 3 ? acked + rnd(written - acked) : Math.max(sent, acked);
        if (from >= written) continue;
        const len = Math.min(1 + rnd(9000), written - from);
        const out = Buffer.alloc(len);
        b.copyOut(add(first, from), len, out, 0);
        if (!out.equals(stream.subarray(from, from + len))) mismatches++;
        sent = Math.max(sent, from + len);
      }
      if (b.queued !== written - acked) return t.fail(`queued ${b.queued} != ${written - acked}`);
      if (b.headSeq !== add(first, acked)) return t.fail('headSeq does not follow the ACKs');
    }
    t.equal(mismatches, 0, 'every copy byte-exact');
    t.ok(acked > 100_000, `a lot went through (${acked} bytes acknowledged)`);
  });
}

t.test('a chunk only partly acknowledged stays; whole ones are let go (no reference kept)', async (t) => {
  const b = new SendBuffer(100);
  const c1 = Buffer.alloc(1000, 1);
  const c2 = Buffer.alloc(1000, 2);
  b.push(c1, 1000);
  b.push(c2, 600); // only the first 600 bytes of c2 were taken
  t.equal(b.queued, 1600);
  b.drop(1200);
  t.equal(b.queued, 400);
  const out = Buffer.alloc(400);
  b.copyOut(1300, 400, out, 0);
  t.ok(out.equals(Buffer.alloc(400, 2)));
  const held = (b as unknown as { chunks: Buffer[] }).chunks;
  t.notOk(held.includes(c1), 'the acknowledged chunk is not referenced any more');
});
