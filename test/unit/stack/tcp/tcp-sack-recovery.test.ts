// The sender's loss recovery with SACK and timestamps: every hole the peer's
// SACK blocks show is resent once, without waiting an RTT per hole; a fast
// retransmit that the timestamps prove needless (reordering) is undone.
import t from 'tap';
import { ACK, add, bytes, established, seg, ISNS } from './harness.js';
import type { Segment } from '../../../../src/stack/contracts.js';

function ackWith(seq: number, ack: number, blocks: [number, number][], tsEcr = 0): Segment {
  const s = seg({ flags: ACK, seq, ack, tsVal: tsEcr ? 100 : -1, tsEcr });
  blocks.forEach(([l, r], i) => {
    s.sack[2 * i] = l >>> 0;
    s.sack[2 * i + 1] = r >>> 0;
  });
  s.sackCount = blocks.length;
  return s;
}

for (const [label, irs, iss] of ISNS) {
  t.test(`two losses in one window: both holes resent once, before any partial ACK (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss, {}, { sackOk: true });
    const S = (k: number) => add(server, k * 1000);
    c.write(bytes(10_000), 10);
    t.equal(rec.take().length, 10, 'ten segments in flight');
    c.receive(ackWith(client, S(2), []), 11); // 0 and 1 arrived; 2 lost
    c.receive(ackWith(client, S(2), [[S(3), S(4)]]), 12);
    c.receive(ackWith(client, S(2), [[S(3), S(5)]]), 13);
    c.receive(
      ackWith(client, S(2), [
        [S(6), S(7)],
        [S(3), S(5)],
      ]),
      14,
    ); // 5 lost too
    let out = rec.take().filter((x) => x.data.length > 0);
    t.same(
      out.map((x) => x.seq),
      [S(2)],
      'third duplicate ACK: the head is resent',
    );
    c.receive(
      ackWith(client, S(2), [
        [S(6), S(8)],
        [S(3), S(5)],
      ]),
      15,
    );
    out = rec.take().filter((x) => x.data.length > 0);
    t.same(
      out.map((x) => x.seq),
      [S(5)],
      'the next duplicate ACK resends the second hole at once',
    );
    c.receive(
      ackWith(client, S(2), [
        [S(6), S(10)],
        [S(3), S(5)],
      ]),
      16,
    );
    c.receive(ackWith(client, S(5), [[S(6), S(10)]]), 17); // the first resend arrived
    out = rec.take().filter((x) => x.data.length > 0);
    t.same(
      out.map((x) => x.seq),
      [],
      'a partial ACK resends nothing already resent',
    );
    c.receive(ackWith(client, S(10), []), 18);
    t.equal(c.retransmits, 2, 'exactly the two lost segments were resent');
    t.equal(c.sendQueued, 0, 'all acknowledged');
  });

  t.test(`SACK blocks outside the window are ignored (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss, {}, { sackOk: true });
    const S = (k: number) => add(server, k * 1000);
    c.write(bytes(5000), 10);
    rec.take();
    for (let i = 0; i < 3; i++)
      c.receive(
        ackWith(client, S(0), [
          [S(7), S(9)],
          [S(3), S(2)],
          [add(server, -5000), S(1)],
        ]),
        11 + i,
      );
    const out = rec.take().filter((x) => x.data.length > 0);
    t.same(
      out.map((x) => x.seq),
      [S(0)],
      'only the head is resent: no hole can be read from bogus blocks',
    );
    c.receive(ackWith(client, S(5), []), 20);
    t.equal(c.sendQueued, 0);
  });

  t.test(`a fast retransmit the timestamps prove needless is undone (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss, {}, { sackOk: true, tsVal: 50 });
    const S = (k: number) => add(server, k * 1000);
    c.write(bytes(5000), 100); // within the first window, all sent at once; the originals carry tsVal from t = 100
    const first = rec.take();
    const cwndBefore = c.debugState(100).cwnd as number;
    for (let i = 0; i < 3; i++) c.receive(ackWith(client, S(0), [[S(1), S(2 + i)]], first[0].tsVal), 150 + i);
    const resent = rec.take().filter((x) => x.data.length > 0);
    t.same(
      resent.map((x) => x.seq),
      [S(0)],
      'fast retransmit after three duplicate ACKs',
    );
    t.ok((c.debugState(160).cwnd as number) < cwndBefore, 'the window was cut');
    // the original, only reordered, arrives: the ACK echoes its timestamp, older than the resend's
    c.receive(ackWith(client, S(4), [], first[0].tsVal), 170);
    const st = c.debugState(170);
    t.equal(st.inRecovery, false, 'recovery ends');
    t.ok((st.cwnd as number) >= cwndBefore, `the window is restored (${st.cwnd} >= ${cwndBefore})`);
    // reordering seen: three duplicate ACKs no longer trigger a resend
    c.write(bytes(1000), 171);
    rec.take();
    for (let i = 0; i < 3; i++) c.receive(ackWith(client, S(4), [[S(5), S(6 + i)]], first[0].tsVal), 180 + i);
    t.same(
      rec
        .take()
        .filter((x) => x.data.length > 0)
        .map((x) => x.seq),
      [],
      'the threshold was raised',
    );
  });

  t.test(`a fast retransmit that was needed is kept (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss, {}, { sackOk: true, tsVal: 50 });
    const S = (k: number) => add(server, k * 1000);
    c.write(bytes(6000), 100);
    rec.take();
    for (let i = 0; i < 3; i++) c.receive(ackWith(client, S(0), [[S(1), S(2 + i)]], 0), 150 + i);
    const [resend] = rec.take().filter((x) => x.data.length > 0);
    c.receive(ackWith(client, S(6), [], resend.tsVal), 170); // the ACK echoes the resend: it was a loss
    t.ok((c.debugState(170).ssthresh as number) < 64 * 1024, 'the cut stands');
    t.equal(c.retransmits, 1);
  });
}

t.test('a small flight: early retransmit on fewer duplicates, limited transmit sends new data on the first ones', async (t) => {
  const [, irs, iss] = ISNS[0];
  {
    const { c, rec, client, server } = established(irs, iss, {}, { sackOk: true });
    c.write(bytes(3000), 10); // three segments, nothing more to send
    rec.take();
    c.receive(ackWith(client, server, [[add(server, 1000), add(server, 2000)]]), 11);
    t.same(
      rec.take().filter((x) => x.data.length > 0),
      [],
      'one duplicate: not yet',
    );
    c.receive(ackWith(client, server, [[add(server, 1000), add(server, 3000)]]), 12);
    t.same(
      rec
        .take()
        .filter((x) => x.data.length > 0)
        .map((x) => x.seq),
      [server],
      'two duplicates with three out: resent (RFC 5827)',
    );
  }
  {
    const { c, rec, client, server } = established(irs, iss, { sndBuf: 64 * 1024 }, { sackOk: true });
    c.write(bytes(20_000), 10); // ten go out (the initial window), ten wait
    t.equal(rec.take().length, 10);
    c.receive(ackWith(client, server, [[add(server, 1000), add(server, 2000)]]), 11);
    const sent = rec.take().filter((x) => x.data.length > 0);
    t.same(
      sent.map((x) => x.seq),
      [add(server, 10_000)],
      'the first duplicate lets one new segment out (RFC 3042)',
    );
  }
});
