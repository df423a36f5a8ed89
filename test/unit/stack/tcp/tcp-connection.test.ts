// The TCP state machine driven by crafted segments and a fake clock, each case
// with ISNs near zero and near the 2^32 wrap.
import t from 'tap';
import { TcpConnection } from '../../../../src/stack/tcp/tcp-connection.js';
import { ACK, FIN, ISNS, PSH, RST, Recorder, SYN, add, bytes, established, opts, seg } from './harness.js';

for (const [label, irs, iss] of ISNS) {
  t.test(`handshake (${label})`, async (t) => {
    t.test('nothing before accept(); SYN-ACK with the negotiated options after', async (t) => {
      const rec = new Recorder();
      const c = TcpConnection.fromSyn(rec, opts({ wscale: 7 }), iss, seg({ flags: SYN, seq: irs, mss: 1400, wscale: 6, sackOk: true, tsVal: 777 }), 0);
      t.equal(c.state, 'SYN-RECEIVED');
      t.same(rec.sent, [], 'silent while the upstream is dialled');
      c.receive(seg({ flags: SYN, seq: irs, mss: 1400 }), 5);
      t.same(rec.sent, [], 'a repeated SYN changes nothing while pending');
      c.accept(10);
      const [sa] = rec.take();
      t.equal(sa.flags, SYN | ACK);
      t.equal(sa.seq, iss);
      t.equal(sa.ack, add(irs, 1));
      t.equal(sa.mss, 1000);
      t.equal(sa.wscale, 7, 'window scale offered back');
      t.equal(sa.sackOk, true);
      t.equal(sa.tsEcr, 777, 'timestamp echoed');
      c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1), tsVal: 778, tsEcr: sa.tsVal }), 11);
      t.equal(c.state, 'ESTABLISHED');
      t.same(rec.events, ['open']);
    });
    t.test('without options: no scale, no SACK, no timestamps, MSS 536 assumed', async (t) => {
      const rec = new Recorder();
      const c = TcpConnection.fromSyn(rec, opts({ wscale: 7, mss: 1460 }), iss, seg({ flags: SYN, seq: irs }), 0);
      c.accept(0);
      const [sa] = rec.take();
      t.equal(sa.wscale, -1);
      t.equal(sa.sackOk, false);
      t.equal(sa.tsVal, -1);
      c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1) }), 1);
      c.write(bytes(2000), 2);
      const data = rec.take().filter((s) => s.data.length > 0);
      t.equal(data[0].data.length, 536, 'segments sized to the default MSS');
    });
    t.test('abort while pending: RST|ACK acknowledging the SYN', async (t) => {
      const rec = new Recorder();
      const c = TcpConnection.fromSyn(rec, opts(), iss, seg({ flags: SYN, seq: irs }), 0);
      c.abort(1);
      const [r] = rec.take();
      t.equal(r.flags, RST | ACK);
      t.equal(r.seq, 0);
      t.equal(r.ack, add(irs, 1));
      t.same(rec.closed, ['aborted']);
      t.equal(c.nextDeadline(), Infinity);
    });
    t.test('data on the handshake-completing ACK is delivered', async (t) => {
      const rec = new Recorder();
      const c = TcpConnection.fromSyn(rec, opts(), iss, seg({ flags: SYN, seq: irs }), 0);
      c.accept(0);
      rec.take();
      c.receive(seg({ flags: ACK | PSH, seq: add(irs, 1), ack: add(iss, 1), data: Buffer.from('hello') }), 1);
      t.equal(c.state, 'ESTABLISHED');
      t.equal(rec.received().toString(), 'hello');
    });
    t.test('a lost SYN-ACK is retransmitted on RTO, and again on a repeated SYN', async (t) => {
      const rec = new Recorder();
      const c = TcpConnection.fromSyn(rec, opts({ rtoInitial: 1000 }), iss, seg({ flags: SYN, seq: irs }), 0);
      c.accept(0);
      rec.take();
      t.equal(c.nextDeadline(), 1000);
      c.onTimer(1000);
      t.equal(rec.take()[0].flags, SYN | ACK);
      c.receive(seg({ flags: SYN, seq: irs }), 1500);
      t.equal(rec.take()[0].flags, SYN | ACK);
    });
  });

  t.test(`data both ways (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss);
    const up = bytes(3000, 2);
    c.receive(seg({ flags: ACK, seq: client, ack: server, data: up.subarray(0, 1000) }), 10);
    c.receive(seg({ flags: ACK, seq: add(client, 1000), ack: server, data: up.subarray(1000, 2000) }), 11);
    const acks = rec.take();
    t.equal(acks.length, 1, 'every second full segment is ACKed at once');
    t.equal(acks[0].ack, add(client, 2000));
    c.receive(seg({ flags: ACK, seq: add(client, 2000), ack: server, data: up.subarray(2000) }), 12);
    t.same(rec.take(), [], 'the third waits for the delayed ACK');
    t.equal(c.nextDeadline(), 12 + 40);
    c.onTimer(52);
    t.equal(rec.take()[0].ack, add(client, 3000), 'delayed ACK fires');
    t.ok(rec.received().equals(up));
    const down = bytes(2500, 3);
    t.equal(c.write(down, 60), 2500);
    const segs = rec.take();
    t.same(
      segs.map((s) => s.data.length),
      [1000, 1000, 500],
    );
    t.same(
      segs.map((s) => s.seq),
      [server, add(server, 1000), add(server, 2000)],
    );
    t.ok(Buffer.concat(segs.map((s) => s.data)).equals(down));
    c.receive(seg({ flags: ACK, seq: add(client, 3000), ack: add(server, 2500) }), 61);
    t.equal(c.sendQueued, 0);
    t.equal(c.nextDeadline(), Infinity, 'nothing outstanding, no timer');
  });

  t.test(`out-of-order and duplicates (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss, {}, { sackOk: true });
    const d = bytes(3000, 4);
    c.receive(seg({ flags: ACK, seq: add(client, 2000), ack: server, data: d.subarray(2000) }), 10);
    let [a] = rec.take();
    t.equal(a.ack, client, 'duplicate ACK for the hole');
    t.same(a.sack, [add(client, 2000), add(client, 3000)], 'SACK block for what arrived');
    c.receive(seg({ flags: ACK, seq: add(client, 1000), ack: server, data: d.subarray(1000, 2000) }), 11);
    [a] = rec.take();
    t.same(a.sack, [add(client, 1000), add(client, 3000)], 'blocks merge');
    t.equal(rec.received().length, 0, 'nothing delivered past a hole');
    c.receive(seg({ flags: ACK, seq: client, ack: server, data: d.subarray(0, 1000) }), 12);
    t.ok(rec.received().equals(d), 'all delivered exactly once when the hole fills');
    [a] = rec.take();
    t.equal(a.ack, add(client, 3000));
    c.receive(seg({ flags: ACK, seq: client, ack: server, data: d.subarray(0, 1000) }), 13);
    t.ok(rec.received().equals(d), 'a duplicate is not delivered again');
    t.equal(rec.take()[0].ack, add(client, 3000), 'and is answered with an ACK');
  });

  t.test(`a window of segments behind one late segment is all kept (${label})`, async (t) => {
    // 1000-byte segments: #0 is late, #1..#63 arrive first (more than a small hole cap would keep)
    const { c, rec, client, server } = established(irs, iss, { rcvBuf: 256 * 1024 }, { sackOk: true });
    const d = bytes(64 * 1000, 9);
    for (let k = 1; k < 64; k++) c.receive(seg({ flags: ACK, seq: add(client, k * 1000), ack: server, data: d.subarray(k * 1000, (k + 1) * 1000) }), 10 + k);
    const acks = rec.take();
    t.same(acks[acks.length - 1].sack.slice(0, 2), [add(client, 1000), add(client, 64_000)], 'one SACK block covers all 63');
    t.equal(rec.received().length, 0);
    c.receive(seg({ flags: ACK, seq: client, ack: server, data: d.subarray(0, 1000) }), 100);
    t.ok(rec.received().equals(d), 'the late segment releases all 64 KB, nothing to resend');
    t.equal(rec.take().pop()!.ack, add(client, 64_000));
  });

  t.test(`retransmission with backoff and the retry limit (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss, { rtoInitial: 1000, rtoMin: 200, maxRetries: 3 });
    c.write(bytes(500), 100);
    t.equal(rec.take().length, 1);
    t.equal(c.nextDeadline(), 1100);
    c.onTimer(1100);
    let [r] = rec.take();
    t.equal(r.seq, server, 'retransmits the first unacknowledged byte');
    t.equal(c.nextDeadline(), 1100 + 2000, 'RTO doubled');
    c.onTimer(3100);
    t.equal(c.nextDeadline(), 3100 + 4000, 'and doubled again');
    c.onTimer(7100);
    rec.take();
    c.onTimer(c.nextDeadline());
    [r] = rec.take();
    t.equal(r.flags, RST | ACK, 'gives up with a RST');
    t.same(rec.closed, ['timeout']);
    t.equal(c.retransmits, 3);
    void client;
  });

  t.test(`fast retransmit after three duplicate ACKs (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss);
    c.write(bytes(5000), 10);
    t.equal(rec.take().length, 5);
    for (let i = 1; i <= 2; i++) {
      c.receive(seg({ flags: ACK, seq: client, ack: add(server, 1000) }), 10 + i);
    }
    c.receive(seg({ flags: ACK, seq: client, ack: add(server, 1000) }), 13);
    t.same(rec.take(), [], 'two duplicates are not enough');
    c.receive(seg({ flags: ACK, seq: client, ack: add(server, 1000) }), 14);
    const [r] = rec.take();
    t.equal(r.seq, add(server, 1000), 'the segment after the ACK is resent at once');
    t.equal(r.data.length, 1000);
    t.ok(c.nextDeadline() > 14 + 100, 'without waiting for the RTO');
  });

  t.test(`flow control (${label})`, async (t) => {
    t.test('our window shrinks while the app does not consume and reopens after', async (t) => {
      const { c, rec, client, server } = established(irs, iss, { rcvBuf: 4000 });
      c.receive(seg({ flags: ACK, seq: client, ack: server, data: bytes(1000) }), 10);
      c.receive(seg({ flags: ACK, seq: add(client, 1000), ack: server, data: bytes(1000) }), 11);
      const [a] = rec.take();
      t.equal(a.window, 2000, 'window = buffer minus unconsumed');
      c.receive(seg({ flags: ACK, seq: add(client, 2000), ack: server, data: bytes(2000) }), 12);
      c.onTimer(c.nextDeadline());
      const zero = rec.take().pop()!;
      t.equal(zero.window, 0, 'zero window');
      c.receive(seg({ flags: ACK, seq: add(client, 4000), ack: server, data: bytes(100) }), 70);
      t.equal(rec.received().length, 4000, 'beyond the window is not accepted');
      c.consumed(3000, 80);
      const [upd] = rec.take().slice(-1);
      t.equal(upd.window, 3000, 'window update after consumed()');
    });
    t.test("the peer's zero window stops data; probes back off; data resumes when it opens", async (t) => {
      const { c, rec, client, server } = established(irs, iss, { rtoInitial: 1000 });
      c.receive(seg({ flags: ACK, seq: client, ack: server, window: 0 }), 5);
      c.write(bytes(3000), 10);
      t.same(rec.take(), [], 'nothing sent into a zero window');
      const d1 = c.nextDeadline();
      t.equal(d1, 1010, 'persist timer armed');
      c.onTimer(d1);
      const [p] = rec.take();
      t.equal(p.data.length, 0);
      t.equal(p.seq, add(server, -1), 'probe with an old sequence number elicits an ACK');
      const d2 = c.nextDeadline();
      t.ok(d2 - d1 > 1000, 'probe interval backs off');
      c.receive(seg({ flags: ACK, seq: client, ack: server, window: 65535 }), d1 + 5);
      t.equal(rec.take().filter((s) => s.data.length > 0).length, 3, 'data flows once the window opens');
    });
    t.test('window scaling both ways', async (t) => {
      const rec = new Recorder();
      const c = TcpConnection.fromSyn(rec, opts({ wscale: 4, rcvBuf: 1 << 20 }), iss, seg({ flags: SYN, seq: irs, wscale: 2, mss: 1000 }), 0);
      c.accept(0);
      const [sa] = rec.take();
      t.equal(sa.window, 65535, 'SYN-ACK window is never scaled');
      c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1), window: 1000 }), 1);
      c.write(bytes(5000), 2);
      t.equal(
        rec.take().reduce((n, s) => n + s.data.length, 0),
        4000,
        'their 1000 << 2 = 4000 bytes may be in flight',
      );
      c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1), data: bytes(10) }), 3);
      c.onTimer(c.nextDeadline());
      const a = rec.take().pop()!;
      t.equal(a.window, ((1 << 20) - 10) >> 4, 'our field is shifted by our scale');
    });
    t.test('write() pushes back when the send buffer is full; onWritable after ACKs', async (t) => {
      const { c, rec, client, server } = established(irs, iss, { sndBuf: 2000 });
      t.equal(c.write(bytes(3000), 10), 2000);
      c.receive(seg({ flags: ACK, seq: client, ack: add(server, 1000) }), 11);
      t.ok(rec.events.includes('writable'));
    });
  });

  t.test(`RST handling per RFC 5961 (${label})`, async (t) => {
    t.test('exact sequence closes', async (t) => {
      const { c, rec, client } = established(irs, iss);
      c.receive(seg({ flags: RST, seq: client }), 10);
      t.same(rec.closed, ['reset-by-peer']);
      t.equal(c.state, 'CLOSED');
    });
    t.test('in window but not exact: challenge ACK, stays open', async (t) => {
      const { c, rec, client, server } = established(irs, iss);
      c.receive(seg({ flags: RST, seq: add(client, 100) }), 10);
      const [a] = rec.take();
      t.equal(a.flags, ACK);
      t.equal(a.ack, client);
      t.equal(a.seq, server);
      t.equal(c.state, 'ESTABLISHED');
    });
    t.test('out of window: ignored', async (t) => {
      const { c, rec, client } = established(irs, iss);
      c.receive(seg({ flags: RST, seq: add(client, 10_000_000) }), 10);
      t.same(rec.take(), []);
      t.equal(c.state, 'ESTABLISHED');
    });
    t.test('SYN in ESTABLISHED: challenge ACK', async (t) => {
      const { c, rec, client } = established(irs, iss);
      c.receive(seg({ flags: SYN, seq: add(client, 5) }), 10);
      const [a] = rec.take();
      t.equal(a.flags, ACK);
      t.equal(c.state, 'ESTABLISHED');
    });
  });

  t.test(`closing (${label})`, async (t) => {
    t.test('client FIN first: CLOSE-WAIT, LAST-ACK, CLOSED', async (t) => {
      const { c, rec, client, server } = established(irs, iss);
      c.receive(seg({ flags: ACK | FIN, seq: client, ack: server }), 10);
      t.equal(c.state, 'CLOSE-WAIT');
      t.ok(rec.events.includes('peer-fin'));
      t.equal(rec.take()[0].ack, add(client, 1), 'FIN acknowledged');
      c.write(Buffer.from('bye'), 11);
      c.close(11);
      const out = rec.take();
      t.equal(out[out.length - 1].flags & FIN, FIN);
      t.equal(c.state, 'LAST-ACK');
      c.receive(seg({ flags: ACK, seq: add(client, 1), ack: add(server, 4) }), 12);
      t.equal(c.state, 'CLOSED');
      t.same(rec.closed, ['fin']);
    });
    t.test('our FIN first: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT, expiry at timeWait', async (t) => {
      const { c, rec, client, server } = established(irs, iss, { timeWait: 2000 });
      c.close(10);
      t.equal(rec.take()[0].flags, FIN | ACK);
      t.equal(c.state, 'FIN-WAIT-1');
      c.receive(seg({ flags: ACK, seq: client, ack: add(server, 1) }), 11);
      t.equal(c.state, 'FIN-WAIT-2');
      c.receive(seg({ flags: ACK, seq: client, ack: add(server, 1), data: Buffer.from('late') }), 12);
      t.equal(rec.received().toString(), 'late', 'still receiving after our FIN (half-close)');
      c.receive(seg({ flags: ACK | FIN, seq: add(client, 4), ack: add(server, 1) }), 13);
      t.equal(c.state, 'TIME-WAIT');
      t.equal(c.nextDeadline(), 2013);
      rec.take();
      c.receive(seg({ flags: ACK | FIN, seq: add(client, 4), ack: add(server, 1) }), 500);
      t.equal(rec.take()[0].ack, add(client, 5), 'a retransmitted FIN is ACKed again');
      t.equal(c.nextDeadline(), 2500, 'and restarts the wait');
      c.onTimer(2499);
      t.equal(c.state, 'TIME-WAIT');
      c.onTimer(2500);
      t.equal(c.state, 'CLOSED');
      t.same(rec.closed, ['time-wait-expired']);
    });
    t.test('simultaneous close through CLOSING', async (t) => {
      const { c, rec, client, server } = established(irs, iss, { timeWait: 1000 });
      c.close(10);
      c.receive(seg({ flags: ACK | FIN, seq: client, ack: server }), 11);
      t.equal(c.state, 'CLOSING');
      c.receive(seg({ flags: ACK, seq: add(client, 1), ack: add(server, 1) }), 12);
      t.equal(c.state, 'TIME-WAIT');
      c.onTimer(1012);
      t.same(rec.closed, ['time-wait-expired']);
    });
    t.test('a lost FIN is retransmitted', async (t) => {
      const { c, rec, server } = established(irs, iss, { rtoInitial: 1000 });
      c.close(10);
      rec.take();
      c.onTimer(1010);
      const [f] = rec.take();
      t.equal(f.flags & FIN, FIN);
      t.equal(f.seq, server);
    });
  });

  t.test(`keepalive (${label})`, async (t) => {
    const { c, rec, client, server } = established(irs, iss, { keepaliveIdle: 10_000, keepaliveInterval: 1000, keepaliveCount: 2 });
    c.receive(seg({ flags: ACK, seq: client, ack: server }), 100);
    t.equal(c.nextDeadline(), 10_100);
    c.onTimer(10_100);
    const [k] = rec.take();
    t.equal(k.seq, add(server, -1), 'probe with seq = sndNxt - 1');
    c.onTimer(11_100);
    c.onTimer(12_100);
    t.same(rec.closed, ['timeout'], 'unanswered probes end the connection');
  });
}

t.test('onClosed is called exactly once', async (t) => {
  const { c, rec, client } = established(10, 20);
  c.receive(seg({ flags: RST, seq: client }), 1);
  c.abort(2);
  c.receive(seg({ flags: RST, seq: client }), 3);
  c.onTimer(1e9);
  t.same(rec.closed, ['reset-by-peer']);
});
