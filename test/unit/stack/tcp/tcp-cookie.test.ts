// Connections from SYN cookies: the stateless SYN-ACK, and the connection the
// client's ACK creates (ESTABLISHED, held until the app accepts it).
import t from 'tap';
import { TcpConnection } from '../../../../src/stack/tcp/tcp-connection.js';
import { StatelessSegment, cookieSynAck } from '../../../../src/stack/tcp/out-segment.js';
import { decodeTsOptions, newCookieDecoded, type CookieDecoded } from '../../../../src/stack/tcp/syn-cookie.js';
import { ACK, FIN, ISNS, PSH, RST, SYN, Recorder, add, bytes, opts, seg } from './harness.js';

const dec = (o: Partial<CookieDecoded>): CookieDecoded => ({ ...newCookieDecoded(), mss: 1460, ...o });

t.test('the cookie SYN-ACK: options offered only when they can come back', async (t) => {
  const out = new StatelessSegment();
  const o = opts({ wscale: 7, rcvBuf: 1 << 20, mss: 1460 });
  cookieSynAck(out, o, 0xdeadbeef, seg({ flags: SYN, seq: 1000, mss: 1460, wscale: 9, sackOk: true, tsVal: 4242 }), 5000);
  t.same(
    { flags: out.flags, seq: out.seq, ack: out.ack, window: out.window, mss: out.mss, wscale: out.wscale, sackOk: out.sackOk, tsEcr: out.tsEcr },
    { flags: SYN | ACK, seq: 0xdeadbeef, ack: 1001, window: 0xffff, mss: 1460, wscale: 7, sackOk: true, tsEcr: 4242 },
  );
  const d = newCookieDecoded();
  t.ok(decodeTsOptions(out.tsVal, d));
  t.same([d.wscale, d.sackOk], [9, true], "the client's shift and SACK-permitted are in our tsVal");
  t.equal(out.payloadLength, 0);
  // No timestamps in the SYN: nothing to carry wscale and SACK, so neither is offered.
  cookieSynAck(out, o, 1, seg({ flags: SYN, seq: 7, mss: 1460, wscale: 9, sackOk: true }), 5000);
  t.same([out.wscale, out.sackOk, out.tsVal, out.ack], [-1, false, -1, 8]);
});

for (const [name, irs, iss] of ISNS) {
  t.test(`${name}: cookie ACK -> ESTABLISHED; accept sends nothing; data both ways`, async (t) => {
    const rec = new Recorder();
    const o = opts({ timestamps: false });
    const c = TcpConnection.fromCookie(rec, o, iss, seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1), window: 30000 }), dec({ mss: 1220 }), 0);
    t.equal(c.state, 'ESTABLISHED');
    t.same(rec.take(), [], 'nothing sent');
    t.same(rec.events, [], 'no onOpen: the owner knows');
    c.accept(1);
    t.same(rec.take(), [], 'accept sends no SYN-ACK');
    t.equal(c.write(bytes(3000), 2), 3000);
    const out = rec.take();
    t.same(
      out.map((s) => [s.flags, s.seq, s.ack, s.data.length]),
      [
        [ACK | PSH, add(iss, 1), add(irs, 1), 1000],
        [ACK | PSH, add(iss, 1001), add(irs, 1), 1000],
        [ACK | PSH, add(iss, 2001), add(irs, 1), 1000],
      ],
      "MSS min(ours 1000, the cookie's 1220)",
    );
    c.receive(seg({ flags: ACK | PSH, seq: add(irs, 1), ack: add(iss, 3001), data: Buffer.from('hello') }), 3);
    t.equal(rec.received().toString(), 'hello');
  });

  t.test(`${name}: data on the cookie ACK and before accept is held, the window shrinks, then delivered byte-exact`, async (t) => {
    const rec = new Recorder();
    const o = opts({ wscale: 2, timestamps: true, rcvBuf: 64 * 1024 });
    const first = bytes(700, 1);
    const ackSeg = seg({ flags: ACK | PSH, seq: add(irs, 1), ack: add(iss, 1), window: 5000, tsVal: 100, tsEcr: 0x0f, data: first });
    const c = TcpConnection.fromCookie(rec, o, iss, ackSeg, dec({ tsOk: true, wscale: 0 }), 0);
    t.same(rec.data, [], 'not delivered before accept');
    t.equal(c.bufferedBytes, 700, 'held bytes count against the connection');
    const second = bytes(2300, 2);
    c.receive(seg({ flags: ACK | PSH, seq: add(irs, 701), ack: add(iss, 1), window: 5000, tsVal: 101, data: second }), 5);
    const acks = rec.take();
    t.equal(acks.length, 1, 'two segments: one ACK');
    t.equal(acks[0].ack, add(irs, 3001));
    t.ok(acks[0].window << 2 <= 64 * 1024 - 3000, `window ${acks[0].window << 2} accounts for the 3000 held bytes`);
    t.equal(acks[0].tsEcr, 101, 'timestamps on: echoes the client');
    t.equal(c.bufferedBytes, 3000);
    t.same(rec.data, []);
    c.accept(6);
    t.same(rec.take(), [], 'accept sends nothing');
    t.same(rec.received(), Buffer.concat([first, second]), 'byte-exact, in order');
    c.consumed(3000, 7);
    t.equal(c.bufferedBytes, 0);
    const upd = rec.take();
    t.equal(upd.length, 1, 'window update once the app took the bytes');
    t.equal(upd[0].window << 2, 64 * 1024);
  });

  t.test(`${name}: a FIN before accept waits behind the held data`, async (t) => {
    const rec = new Recorder();
    const c = TcpConnection.fromCookie(
      rec,
      opts({ timestamps: false }),
      iss,
      seg({ flags: ACK | PSH | FIN, seq: add(irs, 1), ack: add(iss, 1), data: Buffer.from('GET / HTTP/1.0\r\n\r\n') }),
      dec({}),
      0,
    );
    t.equal(c.state, 'CLOSE-WAIT');
    t.same(
      rec.take().map((s) => [s.flags, s.ack]),
      [[ACK, add(irs, 20)]],
      'data and FIN acknowledged',
    );
    t.same(rec.events, []);
    c.accept(1);
    t.equal(rec.received().toString(), 'GET / HTTP/1.0\r\n\r\n');
    t.same(rec.events, ['peer-fin']);
    c.write(Buffer.from('bye'), 2);
    c.close(2);
    t.same(
      rec.take().map((s) => s.flags),
      [ACK | PSH, FIN | ACK],
    );
  });

  t.test(`${name}: reject before accept sends RST`, async (t) => {
    const rec = new Recorder();
    const c = TcpConnection.fromCookie(rec, opts({ timestamps: false }), iss, seg({ flags: ACK | PSH, seq: add(irs, 1), ack: add(iss, 1), data: Buffer.from('x') }), dec({}), 0);
    rec.take();
    c.abort(1);
    const out = rec.take();
    t.same(
      out.map((s) => [s.flags, s.seq, s.ack]),
      [[RST | ACK, add(iss, 1), add(irs, 2)]],
    );
    t.same(rec.closed, ['aborted']);
    t.same(rec.data, [], 'the held byte never reached an app');
  });
}

t.test('window scale decoded from the cookie is honoured both ways', async (t) => {
  const rec = new Recorder();
  const c = TcpConnection.fromCookie(
    rec,
    opts({ wscale: 4, rcvBuf: 1 << 20, sndBuf: 1 << 20 }),
    5000,
    seg({ flags: ACK, seq: 101, ack: 5001, window: 500, tsVal: 9, tsEcr: 3 }),
    dec({ tsOk: true, wscale: 3 }),
    0,
  );
  c.accept(0);
  c.write(bytes(20_000), 1);
  const sent = rec.take();
  const total = sent.reduce((n, s) => n + s.data.length, 0);
  t.ok(total > 3000 && total <= 4000, `${total} bytes out: the client's window 500 << 3 (in whole segments)`);
  c.receive(seg({ flags: ACK, seq: 101, ack: 5001 + 988, window: 500, tsVal: 10, tsEcr: sent[0].tsVal }), 2);
  const more = rec.take();
  t.ok(more.length > 0 && more.every((s) => s.window << 4 >= 0xffff), `our window is scaled by our shift 4: field ${more[0]?.window}`);
  // Without the shift (no timestamps on the ACK) the window is taken as is.
  const rec2 = new Recorder();
  const c2 = TcpConnection.fromCookie(rec2, opts({ wscale: 4 }), 5000, seg({ flags: ACK, seq: 101, ack: 5001, window: 500 }), dec({ wscale: 3 }), 0);
  c2.accept(0);
  c2.write(bytes(20_000), 1);
  t.equal(
    rec2.take().reduce((n, s) => n + s.data.length, 0),
    500,
    'tsOk false: no scaling',
  );
});

t.test('SACK decoded from the cookie: out-of-order data is SACKed only when permitted', async (t) => {
  for (const sackOk of [true, false]) {
    const rec = new Recorder();
    const c = TcpConnection.fromCookie(rec, opts(), 5000, seg({ flags: ACK, seq: 101, ack: 5001, tsVal: 1, tsEcr: 0 }), dec({ tsOk: true, wscale: 0, sackOk }), 0);
    c.accept(0);
    c.receive(seg({ flags: ACK | PSH, seq: 301, ack: 5001, tsVal: 2, data: bytes(100) }), 1);
    const a = rec.take();
    t.equal(a.length, 1);
    t.same(a[0].sack, sackOk ? [301, 401] : [], `sackOk ${sackOk}`);
  }
});

t.test("timestamps continue from the cookie SYN-ACK's clock", async (t) => {
  const out = new StatelessSegment();
  const o = opts();
  cookieSynAck(out, o, 777, seg({ flags: SYN, seq: 100, tsVal: 55, wscale: 2 }), 1000);
  const rec = new Recorder();
  const c = TcpConnection.fromCookie(rec, o, 777, seg({ flags: ACK, seq: 101, ack: 778, tsVal: 56, tsEcr: out.tsVal }), dec({ tsOk: true, wscale: 2 }), 1010);
  c.accept(1010);
  c.write(Buffer.from('x'), 1020);
  const s = rec.take()[0];
  t.ok(((s.tsVal - out.tsVal) | 0) >= 0 && ((s.tsVal - out.tsVal) | 0) < 100, `tsVal ${s.tsVal} follows ${out.tsVal}`);
  t.equal(s.tsEcr, 56);
});
