// SYN cookies in the stack: with the SYN backlog full a SYN is answered
// statelessly, and the client's ACK creates the connection (ESTABLISHED,
// waiting for the proxy core like any new connection).
import t from 'tap';
import { Stack } from '../../../../src/stack/stack.js';
import { MemoryTun } from '../../../../src/tun/memory-tun.js';
import { TcpConnection } from '../../../../src/stack/tcp/tcp-connection.js';
import { DEFAULT_TCP_OPTIONS, ACK, RST, SYN, type OutSegment, type Segment, type TcpSink } from '../../../../src/stack/contracts.js';
import { writeTcpSegment } from '../../../../src/stack/wire/segment-writer.js';
import { Ipv4View } from '../../../../src/stack/wire/ipv4-view.js';
import { TcpView } from '../../../../src/stack/wire/tcp-view.js';
import { fillSegment, newSegment } from '../../../../src/stack/wire/tcp-options.js';
import { parseIpv4 } from '../../../../src/net/address.js';
import { Drop } from '../../../../src/stack/drop-counters.js';
import type { PendingConnection } from '../../../../src/stack/contracts.js';
import type { Duplex } from 'node:stream';
import { Ipv6View } from '../../../../src/stack/wire/ipv6-view.js';
import { Ip6Table } from '../../../../src/stack/wire/ip6-table.js';
import { parseIpv6Into } from '../../../../src/net/address.js';
import { outSegment } from '../../../helpers/out-segment.js';

const CLIENT = parseIpv4('198.18.0.1')!;
const SERVER = parseIpv4('203.0.113.10')!;
const tick = () => new Promise((r) => setImmediate(r));

function makeClient(stack: Stack, port: number, now: () => number, opts: Partial<typeof DEFAULT_TCP_OPTIONS> = {}) {
  const got: Buffer[] = [];
  const events: string[] = [];
  const slot = Buffer.alloc(70_000);
  const sink: TcpSink = {
    sendSegment(s: OutSegment) {
      stack.input(slot, 0, writeTcpSegment(slot, CLIENT, SERVER, port, 80, s), now());
    },
    onOpen: () => void events.push('open'),
    onData: (b, o, l) => void got.push(Buffer.from(b.subarray(o, o + l))),
    onPeerFin: () => void events.push('fin'),
    onWritable: () => {},
    onClosed: (r) => void events.push(`closed:${r}`),
  };
  const conn = TcpConnection.connect(sink, { ...DEFAULT_TCP_OPTIONS, mss: 1460, ...opts }, 1234 + port, now());
  return { conn, got, events };
}

/** Delivers what the stack sent to the client; returns the segments' flags (and the SYN-ACKs' options). */
function pump(dev: MemoryTun, client: ReturnType<typeof makeClient> | null, now: number) {
  const ip = new Ipv4View();
  const tcp = new TcpView();
  const seg: Segment = newSegment();
  const out: { flags: number; seq: number; ack: number; wscale: number; sackOk: boolean; tsVal: number }[] = [];
  for (const p of dev.takeTx()) {
    if (ip.reset(p, 0, p.length) !== 0 || ip.protocol !== 6) continue;
    if (tcp.reset(p, ip.payloadOffset, ip.payloadLength) !== 0) continue;
    fillSegment(tcp, seg);
    out.push({ flags: seg.flags, seq: seg.seq, ack: seg.ack, wscale: seg.wscale, sackOk: seg.sackOk, tsVal: seg.tsVal });
    client?.conn.receive(seg, now);
  }
  return out;
}

function rawSegment(stack: Stack, port: number, flags: number, seq: number, ack: number, now: number): void {
  const slot = Buffer.alloc(200);
  const s = outSegment({ flags, seq, ack, mss: flags & SYN ? 1460 : -1 });
  stack.input(slot, 0, writeTcpSegment(slot, CLIENT, SERVER, port, 80, s), now);
}

const readAll = (s: Duplex, n: number) =>
  new Promise<Buffer>((resolve) => {
    const parts: Buffer[] = [];
    let len = 0;
    s.on('data', (b: Buffer) => {
      parts.push(b);
      len += b.length;
      if (len >= n) resolve(Buffer.concat(parts));
    });
  });

t.test('backlog full: the SYN gets a cookie, no state; the ACK creates the connection; data before accept arrives', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  let clock = 1000;
  const stack = new Stack(dev, (c) => conns.push(c), { maxHalfOpen: 2, halfOpenTimeoutMs: 20_000 });
  rawSegment(stack, 50000, SYN, 1000, 0, clock);
  rawSegment(stack, 50001, SYN, 1000, 0, clock);
  t.equal(stack.counters.tcpHalfOpen, 2);
  await tick();
  pump(dev, null, clock);

  const client = makeClient(stack, 40000, () => clock, { wscale: 5 });
  await tick();
  t.equal(stack.connections, 2, 'the SYN left no state');
  t.equal(stack.counters.synCookiesSent, 1);
  t.equal(stack.drops.get(Drop.syn_backlog_evicted), 0, 'nothing evicted');
  const synAck = pump(dev, client, ++clock);
  t.equal(synAck.length, 1);
  t.equal(synAck[0].flags, SYN | ACK);
  t.equal(synAck[0].wscale, stack.tcpOpts.wscale, 'window scale offered (the SYN had timestamps)');
  t.ok(synAck[0].sackOk);
  t.equal(client.conn.state, 'ESTABLISHED', 'the client completed its handshake with the cookie');
  t.equal(stack.connections, 3, 'the ACK created the connection');
  t.equal(stack.counters.synCookiesAccepted, 1);
  t.equal(stack.counters.tcpHalfOpen, 2, 'and it is not half-open');
  t.equal(conns.length, 3, 'the proxy core was told');

  // The client speaks first, before the core has accepted (it is still dialling).
  const request = Buffer.from('GET /hello HTTP/1.1\r\nHost: x\r\n\r\n');
  client.conn.write(request, ++clock);
  await tick();
  pump(dev, client, ++clock);
  const stream = conns[2].accept();
  const got = readAll(stream, request.length);
  await tick();
  t.same(await got, request, 'bytes that came before accept are delivered byte-exact');
  t.same(
    pump(dev, client, ++clock).filter((s) => s.flags & SYN),
    [],
    'accept sent no SYN-ACK',
  );
  stream.write(Buffer.from('hello from the core'));
  await tick();
  pump(dev, client, ++clock);
  t.equal(Buffer.concat(client.got).toString(), 'hello from the core');
  const s = stack.debugFlows().find((f) => f.src === '198.18.0.1:40000');
  t.equal(s?.sackPerm, true, 'SACK honoured from the cookie');
  t.equal(s?.tsOk, true);

  // Half-open entries still expire; the cookie connection is untouched.
  stack.tick(clock + 25_000);
  t.equal(stack.drops.get(Drop.syn_backlog_timeout), 2);
  t.equal(stack.counters.tcpHalfOpen, 0);
  t.equal(client.conn.state, 'ESTABLISHED');
  stream.destroy();
  stack.abortAll();
});

t.test('an ACK that is not a cookie gets a RST; a rejected cookie connection gets a RST', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  let clock = 1000;
  const stack = new Stack(dev, (c) => conns.push(c), { maxHalfOpen: 0 });
  rawSegment(stack, 41000, ACK, 5000, 123456, clock);
  await tick();
  t.same(
    pump(dev, null, clock).map((s) => s.flags),
    [RST],
    'no cookie: RST as before',
  );
  t.equal(stack.drops.get(Drop.no_flow), 1);
  t.equal(stack.connections, 0);

  const client = makeClient(stack, 40001, () => clock, { timestamps: false });
  await tick();
  const synAck = pump(dev, client, ++clock);
  t.same(
    synAck.map((s) => [s.flags, s.wscale, s.sackOk, s.tsVal]),
    [[SYN | ACK, -1, false, -1]],
    'no timestamps: no wscale, no SACK',
  );
  t.equal(stack.connections, 1);
  // The same ACK for another port: the cookie does not fit.
  rawSegment(stack, 40002, ACK, (1234 + 40001 + 1) >>> 0, (synAck[0].seq + 1) >>> 0, clock);
  await tick();
  t.same(
    pump(dev, null, clock).map((s) => s.flags),
    [RST],
  );
  t.equal(stack.connections, 1);

  conns[0].reject();
  await tick();
  t.same(
    pump(dev, client, ++clock).map((s) => s.flags),
    [RST | ACK],
    'reject: RST',
  );
  t.same(client.events, ['open', 'closed:reset-by-peer']);
  t.equal(stack.connections, 0);
  t.equal(stack.counters.tcpPending, 0);
});

t.test('synCookies: false keeps evicting the oldest half-open entry', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const stack = new Stack(dev, () => {}, { maxHalfOpen: 1, synCookies: false });
  rawSegment(stack, 50000, SYN, 1000, 0, 0);
  rawSegment(stack, 50001, SYN, 1000, 0, 1);
  t.equal(stack.drops.get(Drop.syn_backlog_evicted), 1);
  t.equal(stack.counters.synCookiesSent, 0);
  t.equal(stack.connections, 1);
});

t.test('IPv6: the cookie covers the 128-bit addresses; the ACK opens the connection', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  let clock = 1000;
  const stack = new Stack(dev, (c) => conns.push(c), { maxHalfOpen: 0 });
  const tab = new Ip6Table();
  const a6 = (x: string) => {
    const b = Buffer.alloc(16);
    parseIpv6Into(x, b, 0);
    return tab.intern(b, 0);
  };
  const src = a6('2001:db8:1::2');
  const dst = a6('2001:db8:2::10');
  const other = a6('2001:db8:1::3');
  const slot = Buffer.alloc(70_000);
  const sink: TcpSink = {
    sendSegment: (s) => stack.input(slot, 0, writeTcpSegment(slot, src, dst, 40000, 443, s, tab), clock),
    onOpen: () => {},
    onData: () => {},
    onPeerFin: () => {},
    onWritable: () => {},
    onClosed: () => {},
  };
  const conn = TcpConnection.connect(sink, { ...DEFAULT_TCP_OPTIONS, mss: 1440 }, 4242, clock);
  await tick();
  t.equal(stack.connections, 0);
  t.equal(stack.counters.synCookiesSent, 1);
  const ip = new Ipv6View();
  const tcp = new TcpView();
  const seg: Segment = newSegment();
  const pump = () => {
    const flags: number[] = [];
    for (const p of dev.takeTx()) {
      if (ip.reset(p, 0, p.length) !== 0 || ip.protocol !== 6 || tcp.reset(p, ip.payloadOffset, ip.payloadLength) !== 0) continue;
      fillSegment(tcp, seg);
      flags.push(seg.flags);
      if (p.readUInt32BE(36) === 2) conn.receive(seg, clock); // to the real client only
    }
    return flags;
  };
  // The ACK from a neighbour address with the same ports: not its cookie.
  const synAck = dev.takeTx();
  t.equal(synAck.length, 1);
  ip.reset(synAck[0], 0, synAck[0].length);
  tcp.reset(synAck[0], ip.payloadOffset, ip.payloadLength);
  fillSegment(tcp, seg);
  const cookie = seg.seq;
  const raw = outSegment({ flags: ACK, seq: 4243, ack: (cookie + 1) >>> 0 });
  stack.input(slot, 0, writeTcpSegment(slot, other, dst, 40000, 443, raw, tab), clock);
  await tick();
  t.same(pump(), [RST], 'the cookie of 2001:db8:1::2 does not open a flow for 2001:db8:1::3');
  t.equal(stack.connections, 0);
  // The real client gets its SYN-ACK and completes.
  ip.reset(synAck[0], 0, synAck[0].length);
  tcp.reset(synAck[0], ip.payloadOffset, ip.payloadLength);
  fillSegment(tcp, seg);
  conn.receive(seg, ++clock);
  await tick();
  t.equal(conn.state, 'ESTABLISHED');
  t.equal(stack.connections, 1);
  t.same(conns[0].src, { family: 6, address: '2001:db8:1::2', port: 40000 });
  conn.write(Buffer.from('over v6'), ++clock);
  const stream = conns[0].accept();
  const data = readAll(stream, 7);
  await tick();
  t.equal((await data).toString(), 'over v6');
  stream.destroy();
  stack.abortAll();
});
