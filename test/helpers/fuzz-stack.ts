// The stack wired the way the data plane wires it (src/data-plane/data-plane.ts): above
// it the gateway's DNS (DnsOverride with a fake-IP pool) on a resolver
// address and a UDP relay with admission and target resolution; over a
// MemoryTun, with nothing that reaches the network: DNS has no upstreams (a
// forwarded query gets SERVFAIL), UDP sockets bind to loopback and are never
// connected (resolveTarget says "no target"), and no connection dials out.
// Used by the in-process fuzz test and `npm run fuzz`.
import { performance } from 'node:perf_hooks';
import { Stack } from '../../src/stack/stack.js';
import { Drop, NOT_INPUT_VERDICTS } from '../../src/stack/drop-counters.js';
import { MemoryTun } from '../../src/tun/memory-tun.js';
import { DnsOverride } from '../../src/routing/dns-override.js';
import { FakeIpPool } from '../../src/routing/fake-ip-pool.js';
import { HostPatterns } from '../../src/routing/host-patterns.js';
import { TcpConnection } from '../../src/stack/tcp/tcp-connection.js';
import { DEFAULT_TCP_OPTIONS, type OutSegment, type Segment, type TcpSink } from '../../src/stack/contracts.js';
import { writeTcpSegment } from '../../src/stack/wire/segment-writer.js';
import { Ipv4View } from '../../src/stack/wire/ipv4-view.js';
import { TcpView } from '../../src/stack/wire/tcp-view.js';
import { fillSegment, newSegment } from '../../src/stack/wire/tcp-options.js';
import { parseIpv4 } from '../../src/net/address.js';
import { writeUdpDatagram } from '../../src/stack/wire/datagram-writer.js';
import dnsPacket from 'dns-packet';
import type { PendingConnection } from '../../src/stack/contracts.js';
import { UdpSessions } from '../../src/proxy/tun/udp-sessions.js';
import { TunUdp } from '../../src/proxy/tun/tun-udp.js';
import type { Duplex } from 'node:stream';
import { FUZZ_KINDS, PacketFuzzer, type FuzzKind } from './packet-fuzzer.js';

export const FUZZ_DNS = parseIpv4('203.0.113.53')!;
export const FUZZ_CLIENTS = ['192.0.2.1', '192.0.2.77', '198.51.100.9'].map((a) => parseIpv4(a)!);
/** Test hosts, and addresses from the fake pool (198.18.0.4 is the first name mapped). */
export const FUZZ_SERVERS = ['203.0.113.10', '203.0.113.12', '203.0.113.99', '198.18.0.4', '198.18.0.5'].map((a) => parseIpv4(a)!);
export const FUZZ_MAPPED = ['fuzz.example', 'a.fuzz.example'];
const MTU = 1500;
/** Packets per input batch, as one TUN wake-up delivers them. */
const BATCH = 64;

export interface FuzzStack {
  stack: Stack;
  /** Above the stack: the gateway's DNS, then the relay. */
  udp: TunUdp;
  relay: UdpSessions;
  dev: MemoryTun;
  dns: DnsOverride;
  pool: FakeIpPool;
  /** Connections handed to the app side: accepted at once, later, or rejected. */
  conns: { accepted: number; deferred: number; rejected: number; streamErrors: number };
  /** Who is told about each packet the stack sends (the fuzzer learns SYN-ACKs). */
  onTx: ((p: Buffer) => void) | null;
  /** The app side of new connections (the fuzz handler, or an echo for the check afterwards). */
  app: (c: PendingConnection) => void;
}

export function makeFuzzStack(): FuzzStack {
  const dev = new MemoryTun({ mtu: MTU, capture: false });
  let stack: Stack | null = null;
  const pool = new FakeIpPool({ cidr: '198.18.0.0/15', reserved: 4, maxMappings: 1024 }, (ip) => stack?.hasFlowsTo(ip) ?? false);
  const dns = new DnsOverride({ hosts: new HostPatterns(['fuzz.example', '*.fuzz.example']), pool, upstreams: [], timeoutMs: 50, ttl: 10 });
  const conns = { accepted: 0, deferred: 0, rejected: 0, streamErrors: 0 };
  let n = 0;
  let tunUdp: TunUdp | null = null;
  const h: FuzzStack = {
    stack: null as unknown as Stack,
    udp: null as unknown as TunUdp,
    relay: null as unknown as UdpSessions,
    dev,
    dns,
    pool,
    conns,
    onTx: null,
    app: (c) => handle(c, n++, conns),
  };
  const s = (stack = new Stack(dev, (c) => h.app(c), {
    // the gateway's defaults: the fuzz opens tens of thousands of flows per million packets,
    // which must not lock out the normal connection afterwards
    maxConnections: 100_000,
    maxPending: 4096,
    streamHighWaterMark: 16 * 1024,
    clock: () => performance.now(),
    udp: { onDatagram: (k, b, o, l, now) => tunUdp!.onDatagram(k, b, o, l, now) },
  }));
  h.relay = new UdpSessions(s, {
    localAddress: '127.0.0.1',
    maxFlows: 64,
    blockQuic: true,
    idleMs: 2000,
    dnsIdleMs: 1000,
    // every fourth destination port is refused (port unreachable), like a reject rule
    admit: (f) => (f.serverPort % 4 === 0 ? { rule: 'fuzz-reject', action: 'reject' } : { rule: 'default', action: 'direct' }),
    // never a target: no datagram leaves this machine
    resolveTarget: () => null,
  });
  h.udp = tunUdp = new TunUdp(s, { address: FUZZ_DNS, answer: (q) => dns.answer(q) }, h.relay);
  h.stack = s;
  dev.onTx((p) => h.onTx?.(p));
  return h;
}

/** The app side: accept most connections (some only later), reject some; echo a little and close some. */
function handle(c: PendingConnection, i: number, counts: FuzzStack['conns']): void {
  const r = i % 8;
  if (r === 0) {
    counts.rejected++;
    c.reject();
    return;
  }
  const use = (stream: Duplex) => {
    stream.on('error', () => counts.streamErrors++);
    stream.on('data', (d: Buffer) => {
      if (r === 1) stream.write(d.subarray(0, 64));
      if (r === 2) stream.end();
      if (r === 3) stream.destroy();
    });
    if (r === 4) stream.write(Buffer.alloc(3000, 0x41));
    // like a sniff timeout or an upstream hanging up: the flow table stays bounded on long runs
    setTimeout(() => stream.destroy(), 1000 + (i % 5) * 500).unref();
  };
  if (r < 5) {
    counts.accepted++;
    use(c.accept());
  } else {
    counts.deferred++;
    setImmediate(() => {
      try {
        use(c.accept());
      } catch {
        // the client went away first (closed by a RST from the fuzzer): nothing to accept
      }
    });
  }
}

export interface FeedResult {
  packets: number;
  /** Exceptions out of stack.input (must be 0). */
  threw: number;
  firstError: Error | null;
  /** The packet that threw first, hex, for a repro. */
  firstErrorPacket: string | null;
  byKind: Record<FuzzKind, number>;
  ms: number;
}

/**
 * Feeds `count` packets from the fuzzer into the stack in batches, on the real
 * clock, yielding to the event loop every few batches so DNS answers, UDP
 * sockets, flushes and stream callbacks run. Stops early at `deadlineMs` (wall clock).
 */
export async function feed(h: FuzzStack, fz: PacketFuzzer, count: number, deadlineMs = Infinity): Promise<FeedResult> {
  const slot = Buffer.alloc(MTU + 128);
  const byKind = Object.fromEntries(FUZZ_KINDS.map((k) => [k, 0])) as Record<FuzzKind, number>;
  const res: FeedResult = { packets: 0, threw: 0, firstError: null, firstErrorPacket: null, byKind, ms: 0 };
  h.onTx = (p) => fz.learn(p);
  const t0 = performance.now();
  const yieldEvery = BATCH * 16;
  for (let i = 0; i < count;) {
    const now = performance.now();
    const end = Math.min(count, i + BATCH);
    for (; i < end; i++) {
      const len = fz.next(slot);
      byKind[fz.lastKind]++;
      // an exact-length view: a read past the packet throws instead of reading stale bytes
      const pkt = slot.subarray(0, len);
      try {
        h.stack.input(pkt, 0, len, now);
      } catch (e) {
        if (res.threw++ === 0) {
          res.firstError = e as Error;
          res.firstErrorPacket = pkt.toString('hex');
        }
      }
    }
    res.packets = i;
    h.stack.tick(now);
    h.relay.sweep(now);
    if (i % yieldEvery === 0 || i === count) {
      await new Promise((r) => setImmediate(r));
      if (performance.now() - t0 > deadlineMs) break;
    }
  }
  res.ms = performance.now() - t0;
  return res;
}

/** Lets pending DNS answers, UDP socket setup and flushes finish. */
export async function settle(h: FuzzStack, ms = 200): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    h.stack.tick(performance.now());
    h.relay.sweep(performance.now());
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Where every packet in went. Each one that stack.input() took ends in exactly
 * one of: a drop (counted by reason at the point it was refused), a new
 * connection (tcpTotal), a segment of a connection (tcpSegments), a datagram
 * handed up (udpDatagrams: to the gateway's DNS or the relay, which counts
 * refused and over-limit datagrams too), an echo answered, or link chatter
 * ignored, or a fragment taken into reassembly (fragmentsIn: a datagram it
 * completes is counted as one more packet in, datagramsReassembled, with a
 * verdict of its own). The drop reasons that are not input verdicts (NOT_INPUT_VERDICTS:
 * something we would have sent, or a connection reset later) are left out.
 */
export function accounting(h: FuzzStack) {
  const c = h.stack.counters;
  const d = h.stack.drops;
  const inputDrops = d.total() - NOT_INPUT_VERDICTS.reduce((n, k) => n + d.get(Drop[k]), 0);
  // A SYN answered with a SYN cookie (backlog full) is handled without a connection.
  // A fragment taken into reassembly is handled; the datagram it completes is one more packet in, with its own verdict.
  const handled = c.tcpTotal + c.synCookiesSent + c.tcpSegments + c.udpDatagrams + c.icmpEchoReplies + c.ndIgnored + c.fragmentsIn;
  const packets = c.packetsIn + c.datagramsReassembled;
  return { packetsIn: c.packetsIn, reassembled: c.datagramsReassembled, inputDrops, handled, unaccounted: packets - inputDrops - handled };
}

export function dropsByReason(h: FuzzStack): Record<string, number> {
  return Object.fromEntries([...h.stack.drops.entries()].filter(([, v]) => v > 0));
}

/**
 * A normal connection on the same stack after the fuzzing: a client
 * TcpConnection (fresh 4-tuple) opens, sends `text`, gets it echoed, closes.
 * Returns what came back.
 */
export async function normalConnection(h: FuzzStack, text = 'still works'): Promise<string> {
  const client = parseIpv4('192.0.2.200')!;
  const server = parseIpv4('203.0.113.10')!;
  const port = 45678;
  const slot = Buffer.alloc(MTU + 128);
  const got: Buffer[] = [];
  let open = false;
  const sink: TcpSink = {
    sendSegment(s: OutSegment) {
      const len = writeTcpSegment(slot, client, server, port, 80, s);
      h.stack.input(slot, 0, len, performance.now());
    },
    onOpen: () => void (open = true),
    onData: (b, o, l) => void got.push(Buffer.from(b.subarray(o, o + l))),
    onPeerFin: () => {},
    onWritable: () => {},
    onClosed: () => {},
  };
  const ip = new Ipv4View();
  const tcp = new TcpView();
  const seg: Segment = newSegment();
  let conn: TcpConnection | null = null;
  h.onTx = (p) => {
    if (conn === null || ip.reset(p, 0, p.length) !== 0 || ip.protocol !== 6 || ip.dst !== client) return;
    if (tcp.reset(p, ip.payloadOffset, ip.payloadLength) !== 0 || tcp.dstPort !== port) return;
    if (fillSegment(tcp, seg) === 0) conn.receive(seg, performance.now());
  };
  // the app side echoes
  h.app = (c) => {
    const stream = c.accept();
    stream.on('error', () => {});
    stream.on('data', (d: Buffer) => stream.write(d));
  };
  conn = TcpConnection.connect(sink, { ...DEFAULT_TCP_OPTIONS, mss: MTU - 40 }, 777_777, performance.now());
  const deadline = performance.now() + 5000;
  let sent = false;
  while (performance.now() < deadline && Buffer.concat(got).toString() !== text) {
    if (open && !sent) sent = conn.write(Buffer.from(text), performance.now()) > 0;
    h.stack.tick(performance.now());
    conn.onTimer(performance.now());
    await new Promise((r) => setTimeout(r, 5));
  }
  conn.close(performance.now());
  return Buffer.concat(got).toString();
}

/** A normal DNS query through the same stack after the fuzzing: the A answer for `name`, or null. */
export async function normalDnsQuery(h: FuzzStack, name = 'fuzz.example'): Promise<string | null> {
  const client = parseIpv4('192.0.2.201')!;
  const port = 53535;
  const q = dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  const p = Buffer.alloc(28 + q.length);
  const len = writeUdpDatagram(p, client, FUZZ_DNS, port, 53, q, 0, q.length);
  let answer: string | null = null;
  h.onTx = (r) => {
    if (r[9] !== 17 || r.readUInt32BE(16) !== client || r.readUInt16BE(22) !== port) return;
    const a = dnsPacket.decode(r.subarray(28)).answers?.find((x) => x.type === 'A') as { data?: unknown } | undefined;
    answer = a ? String(a.data) : null;
  };
  h.stack.input(p, 0, len, performance.now());
  for (let i = 0; i < 100 && answer === null; i++) await new Promise((r) => setTimeout(r, 10));
  return answer;
}
