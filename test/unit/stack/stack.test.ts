// The stack over an in-memory device: a client TcpConnection talks to it in
// real IPv4/TCP packets (our writer out, our parser in), plus malformed input.
import t from 'tap';
import { createHash } from 'node:crypto';
import { Stack } from '../../../src/stack/stack.js';
import { MemoryTun } from '../../../src/tun/memory-tun.js';
import { TcpConnection } from '../../../src/stack/tcp/tcp-connection.js';
import { DEFAULT_TCP_OPTIONS, RST, SYN, ACK, type OutSegment, type Segment, type TcpSink } from '../../../src/stack/contracts.js';
import { writeTcpSegment } from '../../../src/stack/wire/segment-writer.js';
import { Ipv4View } from '../../../src/stack/wire/ipv4-view.js';
import { TcpView } from '../../../src/stack/wire/tcp-view.js';
import { fillSegment, newSegment } from '../../../src/stack/wire/tcp-options.js';
import { parseIpv4 } from '../../../src/net/address.js';
import { Drop } from '../../../src/stack/drop-counters.js';
import type { PendingConnection } from '../../../src/stack/contracts.js';
import { outSegment } from '../../helpers/out-segment.js';

const CLIENT = parseIpv4('198.18.0.1')!;
const SERVER = parseIpv4('203.0.113.10')!;
const tick = () => new Promise((r) => setImmediate(r));

/** A client-side TcpConnection whose segments become real packets into the stack. */
function makeClient(stack: Stack, port: number, now: () => number) {
  const got: Buffer[] = [];
  const events: string[] = [];
  const slot = Buffer.alloc(70_000);
  const sink: TcpSink = {
    sendSegment(s: OutSegment) {
      const len = writeTcpSegment(slot, CLIENT, SERVER, port, 80, s);
      stack.input(slot, 0, len, now());
    },
    onOpen: () => events.push('open'),
    onData: (b, o, l) => void got.push(Buffer.from(b.subarray(o, o + l))),
    onPeerFin: () => events.push('fin'),
    onWritable: () => events.push('writable'),
    onClosed: (r) => events.push(`closed:${r}`),
  };
  const conn = TcpConnection.connect(sink, { ...DEFAULT_TCP_OPTIONS, mss: 1460 }, 1234 + port, now());
  return { conn, got, events };
}

/** Parses what the stack sent back and feeds the client connection. */
function pump(dev: MemoryTun, client: ReturnType<typeof makeClient>, now: number) {
  const ip = new Ipv4View();
  const tcp = new TcpView();
  const seg: Segment = newSegment();
  const out = dev.takeTx();
  for (const p of out) {
    if (ip.reset(p, 0, p.length) !== 0 || ip.protocol !== 6) continue;
    if (tcp.reset(p, ip.payloadOffset, ip.payloadLength) !== 0) continue;
    fillSegment(tcp, seg);
    client.conn.receive(seg, now);
  }
  return out.length;
}

t.test('SYN → onConnect; nothing sent until accept; data both ways byte-exact; FIN both ways', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  let clock = 0;
  const stack = new Stack(dev, (c) => conns.push(c));
  const client = makeClient(stack, 40000, () => clock);
  await tick();
  t.equal(conns.length, 1);
  t.same(conns[0].src, { family: 4, address: '198.18.0.1', port: 40000 });
  t.same(conns[0].dst, { family: 4, address: '203.0.113.10', port: 80 });
  t.equal(dev.takeTx().length, 0, 'no SYN-ACK before the upstream is up');
  const stream = conns[0].accept();
  await tick();
  pump(dev, client, ++clock);
  t.same(client.events, ['open']);
  const fromServer: Buffer[] = [];
  stream.on('data', (d: Buffer) => fromServer.push(d));
  const up = Buffer.alloc(200_000);
  for (let i = 0; i < up.length; i++) up[i] = (i * 31) & 0xff;
  const down = Buffer.alloc(150_000, 7);
  let upOff = 0;
  stream.write(down);
  stream.end();
  for (let i = 0; i < 2000 && (fromServer.reduce((n, b) => n + b.length, 0) < up.length || Buffer.concat(client.got).length < down.length); i++) {
    if (upOff < up.length) {
      const n = client.conn.write(up.subarray(upOff, Math.min(up.length, upOff + 65536)), ++clock);
      upOff += n;
      if (upOff === up.length) client.conn.close(clock);
    }
    await tick();
    pump(dev, client, ++clock);
    stack.tick(clock);
    client.conn.onTimer(clock);
  }
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  t.equal(sha(Buffer.concat(fromServer)), sha(up), 'client → server byte-exact');
  t.equal(sha(Buffer.concat(client.got)), sha(down), 'server → client byte-exact');
  t.ok(client.events.includes('fin'), 'the client saw our FIN');
  t.equal(conns[0].counters().up, up.length);
});

t.test('reject sends RST|ACK; unknown flows get a RST per RFC 9293 §3.10.7.1', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const stack = new Stack(dev, (c) => c.reject());
  const slot = Buffer.alloc(200);
  const syn = outSegment({ flags: SYN, seq: 1000, mss: 1460 });
  stack.input(slot, 0, writeTcpSegment(slot, CLIENT, SERVER, 5555, 80, syn), 0);
  await tick();
  const ip = new Ipv4View();
  const tcp = new TcpView();
  const parse = (p: Buffer) => {
    ip.reset(p, 0, p.length);
    tcp.reset(p, 20, p.length - 20);
    return { flags: tcp.flags, seq: tcp.seq, ack: tcp.ack };
  };
  const [r1] = dev.takeTx().map(parse);
  t.same(r1, { flags: RST | ACK, seq: 0, ack: 1001 });
  t.equal(stack.connections, 0);
  // an ACK for a connection that does not exist: RST with seq = its ack
  stack.input(slot, 0, writeTcpSegment(slot, CLIENT, SERVER, 5556, 80, { ...syn, flags: ACK, seq: 50, ack: 777 }), 1);
  await tick();
  const [r2] = dev.takeTx().map(parse);
  t.same(r2, { flags: RST, seq: 777, ack: 0 });
  t.equal(stack.drops.get(Drop.no_flow), 1);
  // a RST for a connection that does not exist: silence
  stack.input(slot, 0, writeTcpSegment(slot, CLIENT, SERVER, 5557, 80, { ...syn, flags: RST, seq: 50 }), 2);
  await tick();
  t.equal(dev.takeTx().length, 0);
});

t.test('malformed and unsupported packets are counted and answered with nothing', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const stack = new Stack(dev, () => t.fail('no connection expected'));
  const slot = Buffer.alloc(200);
  const base = outSegment({ flags: SYN, seq: 1, mss: 1460 });
  const len = writeTcpSegment(slot, CLIENT, SERVER, 1, 2, base);
  const badCk = Buffer.from(slot.subarray(0, len));
  badCk[len - 1] ^= 1;
  stack.input(badCk, 0, len, 0);
  t.equal(stack.drops.get(Drop.tcp_bad_checksum), 1);
  stack.input(slot, 0, 10, 0);
  t.equal(stack.drops.get(Drop.ipv4_truncated), 1);
  const v6 = Buffer.alloc(60);
  v6[0] = 0x60;
  stack.input(v6, 0, 60, 0);
  t.equal(stack.drops.get(Drop.ipv6_bad_length), 1, 'an IPv6 header with payload length 0 (a jumbogram) is dropped');
  const frag = Buffer.from(slot.subarray(0, len));
  frag[6] = 0x20; // MF: a first fragment of 24 bytes (a multiple of 8) is taken into reassembly
  frag.writeUInt16BE(0, 10);
  const { checksum } = await import('../../../src/stack/wire/checksum.js');
  frag.writeUInt16BE(checksum(frag, 0, 20), 10);
  stack.input(frag, 0, len, 0);
  t.equal(stack.counters.fragmentsIn, 1, 'a fragment is held for reassembly');
  const odd = Buffer.from(frag.subarray(0, len - 4)); // 20 bytes of payload with MF: not a multiple of 8
  odd.writeUInt16BE(len - 4, 2);
  odd.writeUInt16BE(0, 10);
  odd.writeUInt16BE(checksum(odd, 0, 20), 10);
  stack.input(odd, 0, odd.length, 0);
  t.equal(stack.drops.get(Drop.ipv4_fragment), 1, 'a malformed fragment is dropped and counted');
  const udp = Buffer.from(frag);
  udp[6] = 0x40;
  udp[9] = 17;
  udp.writeUInt16BE(0, 10);
  udp.writeUInt16BE(checksum(udp, 0, 20), 10);
  stack.input(udp, 0, len, 0);
  t.equal(stack.drops.get(Drop.udp_unsupported), 1, 'UDP without a relay is counted');
  await tick();
  t.equal(dev.takeTx().length, 0);
});

t.test('a response written and ended at once leaves as one segment with the FIN on it (the client closes second)', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  let clock = 0;
  const stack = new Stack(dev, (c) => conns.push(c));
  const client = makeClient(stack, 40001, () => clock);
  await tick();
  const stream = conns[0].accept();
  await tick();
  pump(dev, client, ++clock);
  const body = Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi');
  stream.end(body);
  await tick();
  const ip = new Ipv4View();
  const tcp = new TcpView();
  const out = dev.takeTx().map((p) => {
    ip.reset(p, 0, p.length);
    tcp.reset(p, ip.payloadOffset, ip.payloadLength);
    return { flags: tcp.flags, len: tcp.payloadLength };
  });
  t.same(out, [{ flags: 0x19, len: body.length }], 'FIN|PSH|ACK with the whole response, no bare FIN after it');
  // and the reverse order of the usual proxy: a write now, the end a turn later, still correct
  const client2 = makeClient(stack, 40002, () => clock);
  await tick();
  const s2 = conns[1].accept();
  await tick();
  pump(dev, client2, ++clock);
  s2.write(body);
  await tick();
  s2.end();
  await tick();
  pump(dev, client2, ++clock);
  t.equal(Buffer.concat(client2.got).toString(), body.toString());
  t.ok(client2.events.includes('fin'), 'the FIN came after the data');
});
