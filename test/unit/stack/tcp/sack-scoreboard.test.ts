// The sender's SACK scoreboard: blocks merge into sorted ranges, the
// cumulative ACK trims them, blocks outside (sndUna, sndMax] are ignored, the
// count is bounded, and the holes between ranges are found in order.
import t from 'tap';
import { SackScoreboard } from '../../../../src/stack/tcp/sack-scoreboard.js';
import { ISNS, add, seg, ACK } from './harness.js';

for (const [label, , iss] of ISNS) {
  const S = (k: number) => add(iss, k);
  const ackWith = (blocks: [number, number][]) => {
    const s = seg({ flags: ACK, seq: 1, ack: S(0) });
    blocks.forEach(([l, r], i) => {
      s.sack[2 * i] = S(l);
      s.sack[2 * i + 1] = S(r);
    });
    s.sackCount = blocks.length;
    return s;
  };

  t.test(`${label}: merge, ignore, trim, holes`, async (t) => {
    const sb = new SackScoreboard();
    sb.note(
      ackWith([
        [3000, 4000],
        [1000, 2000],
      ]),
      S(0),
      S(10_000),
    );
    t.equal(sb.count, 2);
    t.equal(sb.high, S(4000));
    sb.note(ackWith([[2000, 3000]]), S(0), S(10_000));
    t.equal(sb.count, 1, 'a block that touches both merges them');
    sb.note(
      ackWith([
        [6000, 7000],
        [0, 500],
        [9000, 11_000],
      ]),
      S(500),
      S(10_000),
    );
    t.equal(sb.count, 2, 'blocks at or below sndUna and past sndMax are ignored');
    t.equal(sb.skipSacked(S(500)), S(500), 'a hole starts at sndUna');
    t.equal(sb.holeEnd(S(500)), S(1000));
    t.equal(sb.skipSacked(S(1500)), S(4000), 'inside a range: the hole after it');
    t.equal(sb.holeEnd(S(4000)), S(6000));
    sb.trim(S(2500));
    t.equal(sb.skipSacked(S(2500)), S(4000), 'the range the ACK cut into starts at sndUna');
    sb.trim(S(7000));
    t.equal(sb.count, 0, 'ranges below the ACK are forgotten');
  });

  t.test(`${label}: at most 16 ranges: the highest goes`, async (t) => {
    const sb = new SackScoreboard();
    for (let k = 0; k < 20; k++) sb.add(S(1000 + k * 100), S(1050 + k * 100));
    t.equal(sb.count, 16);
    t.equal(sb.skipSacked(S(1000)), S(1050), 'the lowest ranges are kept (they matter first)');
  });
}
