// A server that talks first (SSH, SMTP, FTP banners): its bytes reach the
// connection before the client's ACK of our SYN-ACK. The ACK of the SYN's
// sequence slot must not be taken as the acknowledgement of the first queued
// byte: every byte leaves, starting at iss + 1 (RFC 9293 §3.4, §3.10.7.4).
import t from 'tap';
import { TcpConnection } from '../../../../src/stack/tcp/tcp-connection.js';
import { decodeTsOptions, newCookieDecoded } from '../../../../src/stack/tcp/syn-cookie.js';
import { StatelessSegment, cookieSynAck } from '../../../../src/stack/tcp/out-segment.js';
import { ACK, FIN, ISNS, PSH, Recorder, SYN, add, bytes, opts, seg, type Sent } from './harness.js';

/** The data and FIN the connection sent, as [flags, seq relative to iss, length], and the bytes from iss + 1 on. */
function stream(sent: Sent[], iss: number): { rows: [number, number, number][]; bytes: Buffer } {
  const rows: [number, number, number][] = [];
  const parts: Buffer[] = [];
  for (const s of sent) {
    if (s.data.length === 0 && !(s.flags & FIN)) continue;
    rows.push([s.flags, (s.seq - iss) >>> 0, s.data.length]);
    parts.push(s.data);
  }
  return { rows, bytes: Buffer.concat(parts) };
}

for (const [label, irs, iss] of ISNS) {
  const greeting = bytes(3900, 7);
  /** Accepted (SYN-ACK out), nothing from the client since. */
  function synReceived(o = opts()) {
    const rec = new Recorder();
    const c = TcpConnection.fromSyn(rec, o, iss, seg({ flags: SYN, seq: irs, mss: 1000, tsVal: 50 }), 0);
    c.accept(1);
    const [synAck] = rec.take();
    return { c, rec, synAck };
  }

  t.test(`${label}: greeting queued in SYN-RECEIVED leaves whole after the handshake ACK`, async (t) => {
    const { c, rec, synAck } = synReceived();
    t.equal(c.write(greeting, 2), greeting.length, 'accepted while the handshake is open');
    t.same(rec.take(), [], 'nothing sent before the client ACKs the SYN-ACK');
    c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1), tsVal: 51, tsEcr: synAck.tsVal }), 3);
    t.equal(c.state, 'ESTABLISHED');
    const { rows, bytes: out } = stream(rec.take(), iss);
    t.same(rows[0], [ACK | PSH, 1, 988], 'first segment at iss + 1 (MSS 1000 less timestamps)');
    t.ok(out.equals(greeting.subarray(0, out.length)), 'the bytes sent are the greeting from its first byte');
    // The client acknowledges what it got; the rest follows, byte-exact.
    const all: Buffer[] = [out];
    let acked = out.length;
    for (let i = 0; i < 10 && acked < greeting.length; i++) {
      c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1 + acked), window: 65535, tsVal: 52 + i, tsEcr: 1 }), 10 + i);
      const more = stream(rec.take(), iss).bytes;
      all.push(more);
      acked += more.length;
    }
    t.ok(Buffer.concat(all).equals(greeting), 'all 3,900 bytes, in order, none missing');
  });

  t.test(`${label}: greeting and FIN both before the handshake ACK`, async (t) => {
    const { c, rec } = synReceived(opts({ timestamps: false }));
    const small = greeting.subarray(0, 21);
    c.write(small, 2);
    c.close(2);
    t.same(rec.take(), [], 'still waiting for the ACK');
    c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1) }), 3);
    const { rows, bytes: out } = stream(rec.take(), iss);
    t.same(rows, [[FIN | ACK | PSH, 1, 21]], 'data at iss + 1, the FIN on its last byte (one segment, as Linux sends it)');
    t.ok(out.equals(small), '21 bytes, the first one included');
    t.equal(c.state, 'FIN-WAIT-1');
    c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 23) }), 4);
    t.equal(c.state, 'FIN-WAIT-2', 'the FIN is acknowledged at iss + 23');
  });

  t.test(`${label}: the handshake ACK carries the client's data while our greeting waits`, async (t) => {
    const { c, rec } = synReceived(opts({ timestamps: false }));
    c.write(Buffer.from('220 ready\r\n'), 2);
    c.receive(seg({ flags: ACK | PSH, seq: add(irs, 1), ack: add(iss, 1), data: Buffer.from('EHLO x\r\n') }), 3);
    t.equal(rec.received().toString(), 'EHLO x\r\n', 'client data delivered');
    const { rows, bytes: out } = stream(rec.take(), iss);
    t.same(rows[0], [ACK | PSH, 1, 11]);
    t.equal(out.toString(), '220 ready\r\n');
  });

  t.test(`${label}: the handshake ACK lost, the client's first data segment completes it`, async (t) => {
    const { c, rec } = synReceived(opts({ timestamps: false }));
    c.write(Buffer.from('SSH-2.0-x\r\n'), 2);
    c.receive(seg({ flags: ACK | PSH, seq: add(irs, 1), ack: add(iss, 1), data: Buffer.from('SSH-2.0-y\r\n') }), 3);
    t.equal(stream(rec.take(), iss).bytes.toString(), 'SSH-2.0-x\r\n');
  });

  t.test(`${label}: the retransmission timer restarts for the data, not from the SYN-ACK`, async (t) => {
    const { c, rec } = synReceived(opts({ timestamps: false, rtoInitial: 1000 }));
    t.equal(c.nextDeadline(), 1001, 'SYN-ACK timer');
    c.write(greeting.subarray(0, 10), 2);
    c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1) }), 900);
    rec.take();
    t.equal(c.nextDeadline(), 1900, 'armed when the data left');
    c.onTimer(1900);
    const [again] = stream(rec.take(), iss).rows;
    t.same(again, [ACK | PSH, 1, 10], 'the resend starts at iss + 1 too');
  });

  t.test(`${label}: a SYN-ACK resent, then acknowledged: data still from iss + 1`, async (t) => {
    const { c, rec } = synReceived(opts({ timestamps: false, rtoInitial: 1000 }));
    c.write(greeting.subarray(0, 5), 2);
    c.onTimer(1001);
    t.equal(rec.take()[0].flags, SYN | ACK, 'SYN-ACK resent');
    c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1) }), 1200);
    const { rows, bytes: out } = stream(rec.take(), iss);
    t.same(rows, [[ACK | PSH, 1, 5]]);
    t.ok(out.equals(greeting.subarray(0, 5)));
  });

  t.test(`${label}: SYN cookie connection: the greeting leaves whole after accept`, async (t) => {
    const rec = new Recorder();
    const o = opts({ timestamps: false });
    const out = new StatelessSegment();
    cookieSynAck(out, o, iss, seg({ flags: SYN, seq: irs, mss: 1000 }), 0);
    t.equal(decodeTsOptions(out.tsVal, newCookieDecoded()), false, 'no timestamps: nothing encoded');
    const c = TcpConnection.fromCookie(rec, o, iss, seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1) }), { ...newCookieDecoded(), mss: 1000 }, 1);
    c.accept(2);
    c.write(greeting.subarray(0, 2500), 3);
    c.close(3);
    const s = stream(rec.take(), iss);
    t.same(s.rows, [
      [ACK | PSH, 1, 1000],
      [ACK | PSH, 1001, 1000],
      [ACK | PSH, 2001, 500],
      [FIN | ACK, 2501, 0],
    ]);
    t.ok(s.bytes.equals(greeting.subarray(0, 2500)));
  });
}
