// IPv6 in the stack, ICMP echo and ICMP errors, over an in-memory device:
// crafted packets (extension headers, malformed ones), a client TcpConnection
// speaking IPv6 through our writer, and checksums checked by a naive oracle.
import t from 'tap';
import dgram from 'node:dgram';
import { Stack } from '../../../src/stack/stack.js';
import { UdpSessions } from '../../../src/proxy/tun/udp-sessions.js';
import { TunInbound } from '../../../src/proxy/tun/tun-inbound.js';
import type { InboundConnection } from '../../../src/proxy/inbound.js';
import { MemoryTun } from '../../../src/tun/memory-tun.js';
import { TcpConnection } from '../../../src/stack/tcp/tcp-connection.js';
import { ACK, DEFAULT_TCP_OPTIONS, RST, SYN, type OutSegment, type Segment, type TcpSink } from '../../../src/stack/contracts.js';
import { writeTcpSegment } from '../../../src/stack/wire/segment-writer.js';
import { writeUdpDatagram } from '../../../src/stack/wire/datagram-writer.js';
import { Ipv6View } from '../../../src/stack/wire/ipv6-view.js';
import { Ip6Table } from '../../../src/stack/wire/ip6-table.js';
import { ip6GroupsToString, parseIpv6Into } from '../../../src/net/address.js';
import { TcpView } from '../../../src/stack/wire/tcp-view.js';
import { fillSegment, newSegment } from '../../../src/stack/wire/tcp-options.js';
import { parseIpv4 } from '../../../src/net/address.js';
import { Drop } from '../../../src/stack/drop-counters.js';
import type { PendingConnection } from '../../../src/stack/contracts.js';
import { outSegment } from '../../helpers/out-segment.js';

const tick = () => new Promise((r) => setImmediate(r));
const addr = (text: string) => {
  const b = Buffer.alloc(16);
  if (!parseIpv6Into(text, b, 0)) throw new Error(text);
  return b;
};
const CLIENT6 = '2001:db8:1::2';
const SERVER6 = '2001:db8:2::10';

/** The Internet checksum the slow, obvious way: the oracle for our fast one. */
function naiveSum(...parts: Buffer[]): number {
  const all = Buffer.concat(parts);
  let s = 0;
  for (let i = 0; i < all.length; i += 2) s += (all[i] << 8) | (i + 1 < all.length ? all[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
/** Verifies an IPv6 upper-layer checksum with the RFC 8200 §8.1 pseudo-header. */
function v6ChecksumOk(p: Buffer, proto: number, upOff: number): boolean {
  const len = p.length - upOff;
  const pseudo = Buffer.alloc(40);
  p.copy(pseudo, 0, 8, 40);
  pseudo.writeUInt32BE(len, 32);
  pseudo[39] = proto;
  return naiveSum(pseudo, p.subarray(upOff)) === 0xffff;
}

/** An IPv6 packet: fixed header + extension headers + upper layer, with the right lengths and next-header chain. */
function v6Packet(src: string, dst: string, chain: { type: number; body: Buffer }[], proto: number, upper: Buffer): Buffer {
  const ext = chain.map((h, i) => {
    const next = i + 1 < chain.length ? chain[i + 1].type : proto;
    const b = Buffer.concat([Buffer.from([next, 0]), h.body]);
    b[1] = b.length / 8 - 1;
    return b;
  });
  const head = Buffer.alloc(40);
  head.writeUInt32BE(0x60000000, 0);
  const payload = Buffer.concat([...ext, upper]);
  head.writeUInt16BE(payload.length, 4);
  head[6] = chain.length > 0 ? chain[0].type : proto;
  head[7] = 64;
  addr(src).copy(head, 8);
  addr(dst).copy(head, 24);
  const p = Buffer.concat([head, payload]);
  // Fix the upper-layer checksum over the pseudo-header.
  const upOff = 40 + ext.reduce((n, e) => n + e.length, 0);
  const ckAt = proto === 6 ? 16 : proto === 17 ? 6 : 2;
  p.writeUInt16BE(0, upOff + ckAt);
  const pseudo = Buffer.alloc(40);
  p.copy(pseudo, 0, 8, 40);
  pseudo.writeUInt32BE(upper.length, 32);
  pseudo[39] = proto;
  p.writeUInt16BE(~naiveSum(pseudo, p.subarray(upOff)) & 0xffff, upOff + ckAt);
  return p;
}

function synHeader(sport: number, dport: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(1000, 4);
  h[12] = 5 << 4;
  h[13] = SYN;
  h.writeUInt16BE(65535, 14);
  return h;
}

const PAD4 = Buffer.from([1, 2, 0, 0, 0, 0]); // PadN filling a 8-byte header

t.test('Ipv6View walks hop-by-hop and destination options to TCP; finds fragments; drops routing headers with segments left, bad chains', async (t) => {
  const v = new Ipv6View();
  const syn = synHeader(40000, 80);
  const plain = v6Packet(CLIENT6, SERVER6, [], 6, syn);
  t.equal(v.reset(plain, 0, plain.length), 0);
  t.equal(v.protocol, 6);
  t.equal(v.payloadOffset, 40);
  t.equal(v.payloadLength, 20);
  t.ok(v6ChecksumOk(plain, 6, 40), 'the crafted packet checks with the oracle');

  const withExt = v6Packet(
    CLIENT6,
    SERVER6,
    [
      { type: 0, body: PAD4 },
      { type: 60, body: PAD4 },
    ],
    6,
    syn,
  );
  t.equal(v.reset(withExt, 0, withExt.length), 0, 'hop-by-hop + destination options reach TCP');
  t.equal(v.protocol, 6);
  t.equal(v.payloadOffset, 56);
  t.equal(v.extHeaders, 2);

  const rtDone = v6Packet(CLIENT6, SERVER6, [{ type: 43, body: Buffer.from([0, 0, 0, 0, 0, 0]) }], 6, syn);
  t.equal(v.reset(rtDone, 0, rtDone.length), 0, 'a routing header with segments left 0 is skipped (RFC 8200 §4.4)');
  const rt0 = v6Packet(CLIENT6, SERVER6, [{ type: 43, body: Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 0]), addr('2001:db8::99')]) }], 6, syn);
  t.equal(v.reset(rt0, 0, rt0.length), Drop.ipv6_routing_header, 'type 0 routing header with a segment left is dropped');
  // a Fragment header (offset 0, M set, id 1) ends the walk: the caller reassembles
  const frag = v6Packet(
    CLIENT6,
    SERVER6,
    [
      { type: 0, body: PAD4 },
      { type: 44, body: Buffer.from([0, 1, 0, 0, 0, 1]) },
    ],
    6,
    syn,
  );
  t.equal(v.reset(frag, 0, frag.length), 0, 'a fragment is no drop');
  t.ok(v.isFragment);
  t.equal(v.fragOffset, 48, 'the Fragment header after the hop-by-hop header');
  t.equal(v.fragNextAt, 40, 'named by the hop-by-hop header');
  const atomic = v6Packet(CLIENT6, SERVER6, [{ type: 44, body: Buffer.from([0, 0, 0, 0, 0, 1]) }], 6, syn);
  t.equal(v.reset(atomic, 0, atomic.length), 0);
  t.notOk(v.isFragment, 'an atomic fragment (offset 0, no more) is read as unfragmented (RFC 6946)');
  t.equal(v.protocol, 6);
  t.equal(v.payloadOffset, 48);
  const cut = v6Packet(CLIENT6, SERVER6, [], 44, Buffer.from([6, 0, 0, 1]));
  t.equal(v.reset(cut, 0, cut.length), Drop.ipv6_fragment, 'a Fragment header cut short');
  const hbhLate = v6Packet(
    CLIENT6,
    SERVER6,
    [
      { type: 60, body: PAD4 },
      { type: 0, body: PAD4 },
    ],
    6,
    syn,
  );
  t.equal(v.reset(hbhLate, 0, hbhLate.length), Drop.ipv6_bad_ext_header, 'hop-by-hop only right after the fixed header');
  const discardOpt = v6Packet(CLIENT6, SERVER6, [{ type: 60, body: Buffer.from([0x80, 4, 0, 0, 0, 0]) }], 6, syn);
  t.equal(v.reset(discardOpt, 0, discardOpt.length), Drop.ipv6_bad_ext_header, 'an unknown option of the "discard" kind');
  const skipOpt = v6Packet(CLIENT6, SERVER6, [{ type: 60, body: Buffer.from([0x3e, 4, 0, 0, 0, 0]) }], 6, syn);
  t.equal(v.reset(skipOpt, 0, skipOpt.length), 0, 'an unknown option of the "skip" kind');
  const noNext = Buffer.concat([plain.subarray(0, 40), Buffer.alloc(8)]);
  noNext[6] = 59;
  noNext.writeUInt16BE(8, 4);
  t.equal(v.reset(noNext, 0, noNext.length), Drop.ipv6_no_next_header);
  noNext.writeUInt16BE(0, 4);
  t.equal(v.reset(noNext, 0, noNext.length), Drop.ipv6_bad_length, 'payload length 0 (a jumbogram)');
  t.equal(v.reset(plain, 0, 39), Drop.ipv6_truncated);
  const long = Buffer.from(plain);
  long.writeUInt16BE(21, 4);
  t.equal(v.reset(long, 0, long.length), Drop.ipv6_bad_length, 'payload length past the packet');
  const extPast = Buffer.from(withExt);
  extPast[41] = 200;
  t.equal(v.reset(extPast, 0, extPast.length), Drop.ipv6_bad_ext_header, 'an extension header longer than the packet');
});

t.test('Ip6Table: ids, reference counts, RFC 5952 text, growth', async (t) => {
  const tab = new Ip6Table(4);
  const a = tab.intern(addr('2001:db8::1'), 0);
  t.ok(a >= 2 ** 32);
  t.equal(tab.lookup(addr('2001:db8::1'), 0), a);
  t.equal(tab.intern(addr('2001:db8::1'), 0), a, 'the same address, the same id');
  t.equal(tab.lookup(addr('2001:db8::2'), 0), -1);
  tab.release(a);
  t.equal(tab.lookup(addr('2001:db8::1'), 0), a, 'still held once');
  tab.release(a);
  t.equal(tab.lookup(addr('2001:db8::1'), 0), -1, 'freed at zero');
  t.equal(tab.size, 0);
  const texts = ['::', '::1', '2001:db8::', 'fe80::1:2', '2001:db8:0:1:1:1:1:1', '2001:0:0:1::1', 'fc00::5', '::ffff:c000:201', '1:2:3:4:5:6:7:8'];
  for (const x of texts) {
    const id = tab.intern(addr(x), 0);
    const canon = new URL(`http://[${x}]/`).hostname.slice(1, -1);
    t.equal(tab.toString(id), canon, `${x} prints as the URL parser's canonical form`);
  }
  const ids: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const b = addr(`2001:db8:${(i >> 8).toString(16)}::${(i & 255).toString(16)}`);
    ids.push(tab.intern(b, 0));
  }
  for (let i = 0; i < 5000; i += 2) tab.release(ids[i]);
  let found = 0;
  for (let i = 1; i < 5000; i += 2) if (tab.lookup(addr(`2001:db8:${(i >> 8).toString(16)}::${(i & 255).toString(16)}`), 0) === ids[i]) found++;
  t.equal(found, 2500, 'every held address is still found after growth and frees');
  t.equal(ip6GroupsToString([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), '2001:db8::1:0:0:1', 'the first of two equal zero runs');
  t.notOk(parseIpv6Into('1::2::3', Buffer.alloc(16), 0));
  t.notOk(parseIpv6Into('12345::', Buffer.alloc(16), 0));
  t.notOk(parseIpv6Into('1:2:3:4:5:6:7:8:9', Buffer.alloc(16), 0));
});

/** A client TcpConnection speaking IPv6 through our writer; the stack's packets parsed back. */
function v6Client(stack: Stack, dev: MemoryTun, port: number, clock: () => number) {
  const tab = new Ip6Table();
  const src = tab.intern(addr(CLIENT6), 0);
  const dst = tab.intern(addr(SERVER6), 0);
  const got: Buffer[] = [];
  const events: string[] = [];
  const slot = Buffer.alloc(70_000);
  const sink: TcpSink = {
    sendSegment(s: OutSegment) {
      const len = writeTcpSegment(slot, src, dst, port, 80, s, tab);
      stack.input(slot, 0, len, clock());
    },
    onOpen: () => events.push('open'),
    onData: (b, o, l) => void got.push(Buffer.from(b.subarray(o, o + l))),
    onPeerFin: () => events.push('fin'),
    onWritable: () => {},
    onClosed: (r) => events.push(`closed:${r}`),
  };
  const conn = TcpConnection.connect(sink, { ...DEFAULT_TCP_OPTIONS, mss: 1440 }, 777, clock());
  const ip = new Ipv6View();
  const tcp = new TcpView();
  const seg: Segment = newSegment();
  let badChecksums = 0;
  let maxPacket = 0;
  const pump = () => {
    const out = dev.takeTx();
    for (const p of out) {
      maxPacket = Math.max(maxPacket, p.length);
      if (ip.reset(p, 0, p.length) !== 0 || ip.protocol !== 6) continue;
      if (!v6ChecksumOk(p, 6, ip.payloadOffset)) badChecksums++;
      if (tcp.reset(p, ip.payloadOffset, ip.payloadLength) !== 0) continue;
      fillSegment(tcp, seg);
      conn.receive(seg, clock());
    }
    return out.length;
  };
  return { conn, got, events, pump, stats: () => ({ badChecksums, maxPacket }) };
}

t.test('TCP over IPv6: handshake, data both ways byte-exact, MSS for the 40-byte header, FIN both ways, addresses as text', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: InboundConnection[] = [];
  let clock = 1;
  // the hostname behind a destination is the layer above's: the proxy-side adapter asks the data plane's lookup
  const stack = new Stack(dev, (c) => conns.push(new TunInbound(c, (dst) => (dst.address === SERVER6 ? 'v6.example' : undefined))));
  const c = v6Client(stack, dev, 40001, () => clock);
  await tick();
  t.equal(conns.length, 1);
  t.same(conns[0].src, { family: 6, address: CLIENT6, port: 40001 });
  t.same(conns[0].dst, { family: 6, address: SERVER6, port: 80 });
  t.equal(conns[0].hostname, 'v6.example', 'the lookup names an IPv6 destination');
  t.ok(stack.hasFlowsToAddress(SERVER6));
  const stream = conns[0].accept();
  await tick();
  c.pump();
  t.same(c.events, ['open']);
  const up = Buffer.alloc(300_000);
  for (let i = 0; i < up.length; i++) up[i] = (i * 13) & 0xff;
  const down = Buffer.alloc(200_000);
  for (let i = 0; i < down.length; i++) down[i] = (i * 7 + 3) & 0xff;
  const fromClient: Buffer[] = [];
  stream.on('data', (d: Buffer) => fromClient.push(d));
  stream.write(down);
  stream.end();
  let off = 0;
  for (let i = 0; i < 3000; i++) {
    if (off < up.length) off += c.conn.write(up.subarray(off), clock);
    else c.conn.close(clock);
    clock += 1;
    c.conn.onTimer(clock);
    stack.tick(clock);
    await tick();
    c.pump();
    if (Buffer.concat(fromClient).length === up.length && Buffer.concat(c.got).length === down.length && c.events.includes('fin')) break;
  }
  t.ok(Buffer.concat(fromClient).equals(up), 'client → server bytes equal');
  t.ok(Buffer.concat(c.got).equals(down), 'server → client bytes equal');
  t.ok(c.events.includes('fin'), 'FIN reached the client');
  t.equal(c.stats().badChecksums, 0, 'every packet from the stack passes the oracle checksum');
  t.equal(c.stats().maxPacket, 1500, 'full-sized segments fill the MTU exactly (MSS = MTU - 60)');
  for (let i = 0; i < 400 && stack.connections > 0; i++) {
    clock += 10;
    c.conn.onTimer(clock);
    stack.tick(clock);
    await tick();
    c.pump();
  }
  t.equal(stack.connections, 0, 'the flow is gone after TIME-WAIT');
  t.equal(stack.ip6.size, 0, 'and its addresses are released');
});

t.test('echo requests get echo replies (ICMP and ICMPv6), same id, sequence and data, valid checksums', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const stack = new Stack(dev, () => t.fail('no connection'));
  const echo = Buffer.from([128, 0, 0, 0, 0x12, 0x34, 0, 7, ...Buffer.from('ping data')]);
  const p6 = v6Packet(CLIENT6, SERVER6, [], 58, echo);
  stack.input(p6, 0, p6.length, 1);
  const p4 = Buffer.alloc(20 + echo.length);
  p4[0] = 0x45;
  p4.writeUInt16BE(p4.length, 2);
  p4[8] = 64;
  p4[9] = 1;
  p4.writeUInt32BE(parseIpv4('192.0.2.2')!, 12);
  p4.writeUInt32BE(parseIpv4('203.0.113.10')!, 16);
  p4.writeUInt16BE(~naiveSum(p4.subarray(0, 20)) & 0xffff, 10);
  echo.copy(p4, 20);
  p4[20] = 8;
  p4.writeUInt16BE(0, 22);
  p4.writeUInt16BE(~naiveSum(p4.subarray(20)) & 0xffff, 22);
  stack.input(p4, 0, p4.length, 2);
  await tick();
  const out = dev.takeTx();
  t.equal(out.length, 2);
  const r6 = out[0];
  t.equal(r6[6], 58);
  t.ok(r6.subarray(8, 24).equals(addr(SERVER6)), 'from the address pinged');
  t.ok(r6.subarray(24, 40).equals(addr(CLIENT6)), 'to the client');
  t.equal(r6[40], 129, 'echo reply');
  t.ok(r6.subarray(44).equals(echo.subarray(4)), 'identifier, sequence and data as sent');
  t.ok(v6ChecksumOk(r6, 58, 40));
  const r4 = out[1];
  t.equal(r4[20], 0, 'ICMP echo reply');
  t.equal(r4.readUInt32BE(12), parseIpv4('203.0.113.10'));
  t.ok(r4.subarray(24).equals(echo.subarray(4)));
  t.equal(naiveSum(r4.subarray(20)), 0xffff, 'ICMP checksum');
  t.equal(naiveSum(r4.subarray(0, 20)), 0xffff, 'IPv4 header checksum');
  t.equal(stack.counters.icmpEchoReplies, 2);
  const bad = Buffer.from(p6);
  bad[bad.length - 1] ^= 1;
  stack.input(bad, 0, bad.length, 3);
  t.equal(stack.drops.get(Drop.icmp_bad_checksum), 1, 'a corrupted echo request is dropped and counted');
});

t.test('router solicitations, MLD and neighbour discovery are ignored without a drop; --ipv6 off answers administratively prohibited', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const stack = new Stack(dev, () => t.fail('no connection'), { ipv6: false });
  const rs = v6Packet('fe80::1', 'ff02::2', [], 58, Buffer.from([133, 0, 0, 0, 0, 0, 0, 0]));
  const mld = v6Packet('fe80::1', 'ff02::16', [{ type: 0, body: Buffer.from([5, 2, 0, 0, 1, 0]) }], 58, Buffer.from([143, 0, 0, 0, 0, 0, 0, 0]));
  stack.input(rs, 0, rs.length, 1);
  stack.input(mld, 0, mld.length, 1);
  await tick();
  t.equal(dev.takeTx().length, 0, 'nothing answered');
  t.equal(stack.counters.ndIgnored, 2);
  t.equal(stack.drops.total(), 0, 'and nothing counted as a drop');
  const syn = v6Packet(CLIENT6, SERVER6, [], 6, synHeader(40002, 443));
  stack.input(syn, 0, syn.length, 2);
  await tick();
  const out = dev.takeTx();
  t.equal(out.length, 1);
  t.equal(out[0][40], 1, 'ICMPv6 destination unreachable');
  t.equal(out[0][41], 1, 'code 1: administratively prohibited');
  t.ok(out[0].subarray(48).equals(syn), 'quoting the SYN');
  t.ok(v6ChecksumOk(out[0], 58, 40));
  t.equal(stack.drops.get(Drop.ipv6_disabled), 1);
  t.equal(stack.connections, 0);
});

t.test('packets over the MTU get "packet too big" / "fragmentation needed" with the MTU', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const stack = new Stack(dev, () => t.fail('no connection'), { mtu: 1280 });
  const big = v6Packet(CLIENT6, SERVER6, [], 17, Buffer.concat([Buffer.from([0x9c, 0x40, 0, 53, 0x05, 0x50, 0, 0]), Buffer.alloc(1352 - 8)]));
  big.writeUInt16BE(1352, 44);
  stack.input(big, 0, big.length, 1);
  await tick();
  let out = dev.takeTx();
  t.equal(out.length, 1);
  t.equal(out[0][40], 2, 'ICMPv6 packet too big');
  t.equal(out[0].readUInt32BE(44), 1280, 'carrying the MTU');
  t.ok(out[0].length <= 1280, 'the error itself fits the IPv6 minimum MTU');
  t.ok(v6ChecksumOk(out[0], 58, 40));
  const p4 = Buffer.alloc(1400);
  p4[0] = 0x45;
  p4.writeUInt16BE(1400, 2);
  p4[6] = 0x40;
  p4[8] = 64;
  p4[9] = 17;
  p4.writeUInt32BE(parseIpv4('192.0.2.2')!, 12);
  p4.writeUInt32BE(parseIpv4('203.0.113.10')!, 16);
  p4.writeUInt16BE(~naiveSum(p4.subarray(0, 20)) & 0xffff, 10);
  stack.input(p4, 0, p4.length, 2);
  await tick();
  out = dev.takeTx();
  t.equal(out.length, 1);
  t.equal(out[0][20], 3);
  t.equal(out[0][21], 4, 'fragmentation needed');
  t.equal(out[0].readUInt16BE(26), 1280, 'next-hop MTU');
  t.ok(out[0].subarray(28, 48).equals(p4.subarray(0, 20)), 'quoting the header');
  t.equal(stack.drops.get(Drop.packet_too_big), 2);
});

t.test('a connection whose upstream is unreachable gets ICMP host unreachable about its SYN, not a RST (IPv4 and IPv6)', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  const stack = new Stack(dev, (c) => conns.push(c));
  const syn6 = v6Packet(CLIENT6, SERVER6, [], 6, synHeader(40003, 80));
  stack.input(syn6, 0, syn6.length, 1);
  const slot = Buffer.alloc(100);
  const base = outSegment({ flags: SYN, seq: 1000, mss: 1460 });
  const len = writeTcpSegment(slot, parseIpv4('192.0.2.2')!, parseIpv4('203.0.113.10')!, 40004, 80, base);
  stack.input(slot, 0, len, 1);
  await tick();
  t.equal(conns.length, 2);
  conns[0].unreachable();
  conns[1].unreachable();
  await tick();
  const out = dev.takeTx();
  t.equal(out.length, 2, 'one error each, nothing else');
  t.equal(out[0][40], 1);
  t.equal(out[0][41], 3, 'ICMPv6 address unreachable');
  t.equal(out[0].readUInt16BE(48 + 40), 40003, 'quoting the client port');
  t.equal(out[0].readUInt32BE(48 + 44), 1000, 'and the SYN sequence number the kernel checks');
  t.ok(v6ChecksumOk(out[0], 58, 40));
  t.equal(out[1][20], 3);
  t.equal(out[1][21], 1, 'ICMP host unreachable');
  t.equal(out[1].readUInt32BE(28 + 24), 1000, 'IPv4 quote carries the SYN sequence number');
  t.equal(stack.counters.rstSent, 0, 'no RST');
  t.equal(stack.connections, 0, 'both flows gone');
  t.equal(stack.ip6.size, 0);
});

t.test('UDP over IPv6 is relayed; a closed port upstream becomes ICMPv6 port unreachable', async (t) => {
  const echo = dgram.createSocket('udp6');
  await new Promise<void>((r) => echo.bind(0, '::1', () => r()));
  echo.on('message', (m, rinfo) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), rinfo.port, rinfo.address));
  t.teardown(() => echo.close());
  const closed = dgram.createSocket('udp6');
  await new Promise<void>((r) => closed.bind(0, '::1', () => r()));
  const closedPort = closed.address().port;
  closed.close();
  const dev = new MemoryTun({ mtu: 1500 });
  // the relay sits above the stack, as in the data plane
  let relay: UdpSessions | null = null;
  const stack = new Stack(dev, () => {}, { udp: { onDatagram: (k, b, o, l, now) => relay!.onDatagram(k, b, o, l, now) } });
  relay = new UdpSessions(stack, { resolveTarget: (_d, text) => (text === SERVER6 ? '::1' : null) });
  t.teardown(() => relay!.closeAll());
  const tab = new Ip6Table();
  const c = tab.intern(addr(CLIENT6), 0);
  const s = tab.intern(addr(SERVER6), 0);
  const slot = Buffer.alloc(200);
  const payload = Buffer.from('hello over v6');
  let n = writeUdpDatagram(slot, c, s, 50000, echo.address().port, payload, 0, payload.length, tab);
  t.ok(v6ChecksumOk(Buffer.from(slot.subarray(0, n)), 17, 40), 'our writer checks with the oracle');
  stack.input(slot, 0, n, performance.now());
  n = writeUdpDatagram(slot, c, s, 50001, closedPort, payload, 0, payload.length, tab);
  stack.input(slot, 0, n, performance.now());
  const got: Buffer[] = [];
  for (let i = 0; i < 100 && got.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 20));
    got.push(...dev.takeTx());
  }
  const reply = got.find((p) => p[6] === 17);
  const icmp = got.find((p) => p[6] === 58);
  t.ok(reply, 'a reply came back');
  t.equal(reply!.subarray(48).toString(), 'echo:hello over v6');
  t.ok(reply!.subarray(8, 24).equals(addr(SERVER6)), 'from the address the client sent to');
  t.ok(v6ChecksumOk(reply!, 17, 40));
  t.ok(icmp, 'an ICMPv6 error came back');
  t.equal(icmp![40], 1);
  t.equal(icmp![41], 4, 'port unreachable');
  t.equal(icmp!.readUInt16BE(48 + 42), closedPort, 'quoting the datagram headers');
  t.ok(v6ChecksumOk(icmp!, 58, 40));
});

t.test('an IPv6 segment without a flow gets a RST over IPv6', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const stack = new Stack(dev, () => t.fail('no connection'));
  const h = synHeader(40005, 80);
  h[13] = ACK;
  h.writeUInt32BE(5555, 8);
  const p = v6Packet(CLIENT6, SERVER6, [], 6, h);
  stack.input(p, 0, p.length, 1);
  await tick();
  const out = dev.takeTx();
  t.equal(out.length, 1);
  t.equal(out[0][6], 6);
  t.equal(out[0][40 + 13] & RST, RST);
  t.equal(out[0].readUInt32BE(40 + 4), 5555, 'seq is the ACK it answers');
  t.ok(v6ChecksumOk(out[0], 6, 40));
  t.equal(stack.drops.get(Drop.no_flow), 1);
  t.equal(stack.ip6.size, 0, 'no address left held');
});

t.test(
  'through the stack: a SYN behind hop-by-hop and destination options opens a connection; one behind a routing header with segments left is dropped and counted',
  async (t) => {
    const dev = new MemoryTun({ mtu: 1500 });
    const conns: PendingConnection[] = [];
    const stack = new Stack(dev, (c) => conns.push(c));
    const ok = v6Packet(
      CLIENT6,
      SERVER6,
      [
        { type: 0, body: PAD4 },
        { type: 60, body: PAD4 },
      ],
      6,
      synHeader(40010, 80),
    );
    stack.input(ok, 0, ok.length, 1);
    const rh = v6Packet(CLIENT6, SERVER6, [{ type: 43, body: Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 0]), addr('2001:db8::99')]) }], 6, synHeader(40011, 80));
    stack.input(rh, 0, rh.length, 1);
    await tick();
    t.equal(conns.length, 1, 'one connection');
    t.equal(conns[0].src.port, 40010, 'from the packet with options');
    t.equal(stack.drops.get(Drop.ipv6_routing_header), 1, 'the routing header is counted');
    conns[0].reject();
  },
);
