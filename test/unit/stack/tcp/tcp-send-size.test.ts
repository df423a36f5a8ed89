// The sender with a send size over the MSS (TSO: the device splits each
// segment into MSS pieces): the same bytes go in fewer segments of whole MSS
// pieces, each marked with the piece size; the last bytes carry PSH and the
// FIN; windows, congestion control and retransmission still count in MSS, so
// a resent hole is one MSS and a timeout starts again from one.
import t from 'tap';
import type { OutSegment } from '../../../../src/stack/contracts.js';
import { ACK, FIN, PSH, Recorder, add, bytes, established, seg, ISNS } from './harness.js';

/** The recorder, with each segment's piece size beside it. */
class PieceRecorder extends Recorder {
  pieces: number[] = [];
  override sendSegment(s: OutSegment): void {
    super.sendSegment(s);
    this.pieces.push(s.pieceSize ?? 0);
  }
}

/** established() with our recorder: the connection's sink is the one it was built with. */
function conn(irs: number, iss: number, o: Parameters<typeof established>[2] = {}, syn: Parameters<typeof established>[3] = {}) {
  const e = established(irs, iss, o, syn);
  const rec = new PieceRecorder();
  // forward the original sink to ours: sendSegment is the only call the sender makes per segment
  e.rec.sendSegment = (s) => rec.sendSegment(s);
  return { ...e, rec };
}

const lengths = (r: Recorder) =>
  r
    .take()
    .filter((x) => x.data.length > 0)
    .map((x) => x.data.length);

for (const [label, irs, iss] of ISNS) {
  t.test(`a table of writes and windows: segment sizes with sendMax 0 and 8000 (${label})`, async (t) => {
    // mss 1000 (no timestamps), initial cwnd 10 MSS = 10,000
    const rows: { name: string; write: number; want0: number[]; want8k: number[] }[] = [
      { name: 'more than the window', write: 20_000, want0: Array(10).fill(1000), want8k: [8000, 2000] },
      { name: 'ends mid-piece: the tail goes with the last segment', write: 8500, want0: [...Array(8).fill(1000), 500], want8k: [8000, 500] },
      { name: 'less than one piece', write: 300, want0: [300], want8k: [300] },
      { name: 'exactly one segment', write: 8000, want0: Array(8).fill(1000), want8k: [8000] },
    ];
    for (const r of rows) {
      for (const [sendMax, want] of [
        [0, r.want0],
        [8000, r.want8k],
      ] as const) {
        const { c, rec } = conn(irs, iss, { sendMax, sndBuf: 64 * 1024 });
        c.write(bytes(r.write), 10);
        const got = rec.take().filter((x) => x.data.length > 0);
        t.same(
          got.map((x) => x.data.length),
          want,
          `${r.name}, sendMax ${sendMax}`,
        );
        t.same(
          Buffer.concat(got.map((x) => x.data)),
          bytes(r.write).subarray(
            0,
            want.reduce((a, b) => a + b, 0),
          ),
          'the same bytes in order',
        );
        t.ok(
          rec.pieces.filter((_, i) => i < got.length).every((p) => p === 1000),
          'every segment says its pieces are one MSS',
        );
        t.ok(got.at(-1)!.flags & PSH, 'PSH on the last');
      }
    }
  });

  t.test(`a window that is not whole pieces: the partial piece waits (${label})`, async (t) => {
    const { c, rec, client, server } = conn(irs, iss, { sendMax: 64_000, sndBuf: 64 * 1024 });
    c.write(bytes(30_000), 10);
    t.same(lengths(rec), [10_000], 'the initial window in one segment');
    // the peer's window leaves room for 5.5 pieces after this ACK of 4 pieces (slow start adds 4000 to cwnd)
    c.receive(seg({ flags: ACK, seq: client, ack: add(server, 4000), window: 11_500 }), 11);
    t.same(lengths(rec), [5000], 'five whole pieces, not 5.5');
  });

  t.test(`the FIN rides on the last piece of a big segment (${label})`, async (t) => {
    const { c, rec } = conn(irs, iss, { sendMax: 64_000, sndBuf: 64 * 1024 });
    c.write(bytes(3500), 10, false);
    c.close(10);
    const out = rec.take();
    t.equal(out.length, 1, 'one segment');
    t.equal(out[0].data.length, 3500);
    t.equal(out[0].flags, FIN | ACK | PSH, 'data, PSH and FIN together');
  });

  t.test(`retransmissions count in MSS: a timeout resends one piece, a hole one MSS (${label})`, async (t) => {
    const { c, rec, client, server } = conn(irs, iss, { sendMax: 64_000, sndBuf: 64 * 1024, rtoInitial: 1000 }, { sackOk: true });
    c.write(bytes(10_000), 10);
    t.same(lengths(rec), [10_000]);
    c.onTimer(c.nextDeadline());
    const resent = rec.take().filter((x) => x.data.length > 0);
    t.same(
      resent.map((x) => [x.seq, x.data.length]),
      [[server, 1000]],
      'after the timeout cwnd is one MSS: one piece from the first unacknowledged byte',
    );
    t.same(resent[0].data, bytes(10_000).subarray(0, 1000), 'the same bytes');
    // slow start again: the ACK of that piece lets two out, as one segment of two pieces
    c.receive(seg({ flags: ACK, seq: client, ack: add(server, 1000) }), 1500);
    t.same(lengths(rec), [2000], 'the go-back resends in segments of whole pieces as cwnd grows');
    // a hole shown by SACK is resent as one MSS
    const s = seg({ flags: ACK, seq: client, ack: add(server, 1000) });
    s.sack[0] = add(server, 2000);
    s.sack[1] = add(server, 3000);
    s.sackCount = 1;
    for (let k = 0; k < 3; k++) c.receive(s, 1501 + k);
    const after = rec.take().filter((x) => x.data.length > 0);
    t.ok(
      after.every((x) => x.data.length <= 1000),
      'limited transmit and the fast retransmit: one MSS each',
    );
    const head = after.find((x) => x.seq === add(server, 1000));
    t.ok(head, 'a fast retransmit of the head');
    t.equal(head?.data.length, 1000, 'the head: one MSS');
  });

  t.test(`a stretch ACK for a whole segment grows the window by that much in slow start (${label})`, async (t) => {
    for (const [sendMax, want] of [
      [0, 11_000],
      [64_000, 20_000],
    ] as const) {
      const { c, rec, client, server } = conn(irs, iss, { sendMax, sndBuf: 64 * 1024 });
      c.write(bytes(60_000), 10);
      rec.take();
      // one ACK for the whole initial window (10 pieces)
      c.receive(seg({ flags: ACK, seq: client, ack: add(server, 10_000) }), 11);
      const total = lengths(rec).reduce((a, b) => a + b, 0);
      t.equal(total, want, `sendMax ${sendMax}: ${want} bytes may go (cwnd 10,000 + ${want - 10_000})`);
    }
  });
}
