// The stack's gateway-wide memory budget: over it new SYNs are refused with a
// counted RST and upstream writes pause, while the established connection
// keeps going and resumes byte-exact once the client's ACKs free memory.
import t from 'tap';
import { createHash } from 'node:crypto';
import { Stack } from '../../../src/stack/stack.js';
import { MemoryTun } from '../../../src/tun/memory-tun.js';
import { TcpConnection } from '../../../src/stack/tcp/tcp-connection.js';
import { DEFAULT_TCP_OPTIONS, ACK, RST, SYN, type OutSegment, type Segment, type TcpSink } from '../../../src/stack/contracts.js';
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
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function makeClient(stack: Stack, port: number, now: () => number) {
  const got: Buffer[] = [];
  const slot = Buffer.alloc(70_000);
  const sink: TcpSink = {
    sendSegment(s: OutSegment) {
      stack.input(slot, 0, writeTcpSegment(slot, CLIENT, SERVER, port, 80, s), now());
    },
    onOpen: () => {},
    onData: (b, o, l) => void got.push(Buffer.from(b.subarray(o, o + l))),
    onPeerFin: () => {},
    onWritable: () => {},
    onClosed: () => {},
  };
  const conn = TcpConnection.connect(sink, { ...DEFAULT_TCP_OPTIONS, mss: 1460 }, 1234 + port, now());
  return { conn, got };
}

/** Delivers what the stack sent to the client; returns the flags of every packet. */
function pump(dev: MemoryTun, client: ReturnType<typeof makeClient> | null, now: number): number[] {
  const ip = new Ipv4View();
  const tcp = new TcpView();
  const seg: Segment = newSegment();
  const flags: number[] = [];
  for (const p of dev.takeTx()) {
    if (ip.reset(p, 0, p.length) !== 0 || ip.protocol !== 6) continue;
    if (tcp.reset(p, ip.payloadOffset, ip.payloadLength) !== 0) continue;
    fillSegment(tcp, seg);
    flags.push(seg.flags);
    client?.conn.receive(seg, now);
  }
  return flags;
}

function rawSyn(stack: Stack, port: number, now: number): void {
  const slot = Buffer.alloc(200);
  const syn = outSegment({ flags: SYN, seq: 1000, mss: 1460 });
  stack.input(slot, 0, writeTcpSegment(slot, CLIENT, SERVER, port, 80, syn), now);
}

t.test('over the memory budget: SYN refused with RST and counted, writes pause, then resume byte-exact', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  let clock = 0;
  const stack = new Stack(dev, (c) => conns.push(c), { memoryBudget: 64 * 1024, memoryFloorPerFlow: 16 * 1024 });
  const client = makeClient(stack, 40000, () => clock);
  await tick();
  const stream = conns[0].accept();
  await tick();
  pump(dev, client, ++clock);

  // 200 KiB queued towards a client that has not acknowledged anything yet.
  const first = Buffer.alloc(200_000);
  for (let i = 0; i < first.length; i++) first[i] = (i * 31) & 0xff;
  const second = Buffer.alloc(100_000, 9);
  stream.on('error', () => {}); // abortAll resets it at the end
  stream.write(first);
  await tick();
  t.equal(stack.counters.tcpBuffered, 200_000, 'the send queue is counted against the budget');
  stream.write(second);
  await tick();
  t.equal(stack.counters.tcpBuffered, 200_000, 'over the budget the next write is refused, not queued');

  // A new client now gets a RST, counted under its own reason.
  dev.takeTx(); // what the established connection sent: delivered below by retransmission
  rawSyn(stack, 50000, ++clock);
  await tick();
  const answer = pump(dev, null, clock);
  t.same(answer, [RST | ACK], 'the SYN over the budget is answered with RST|ACK');
  t.equal(stack.drops.get(Drop.syn_over_memory), 1);
  t.equal(stack.drops.get(Drop.syn_over_limit), 0);
  t.equal(stack.counters.synRefused, 1);
  t.equal(stack.connections, 1);

  // The established connection keeps working: everything arrives once ACKs free memory.
  for (let i = 0; i < 3000 && Buffer.concat(client.got).length < 300_000; i++) {
    await tick();
    pump(dev, client, (clock += 5));
    stack.tick(clock);
    client.conn.onTimer(clock);
  }
  t.equal(sha(Buffer.concat(client.got)), sha(Buffer.concat([first, second])), 'both writes arrive byte-exact');
  t.ok(stack.counters.tcpBuffered < 64 * 1024, `buffered ${stack.counters.tcpBuffered} back under the budget`);

  rawSyn(stack, 50001, ++clock);
  await tick();
  t.equal(stack.connections, 2, 'under the budget a new SYN is admitted again');
  stack.abortAll();
  t.equal(stack.counters.tcpBuffered, 0, 'nothing stays accounted once every connection is gone');
});

t.test('without a budget nothing is refused for memory', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  const stack = new Stack(dev, (c) => conns.push(c));
  let clock = 0;
  const client = makeClient(stack, 40000, () => clock);
  await tick();
  const stream = conns[0].accept();
  await tick();
  pump(dev, client, ++clock);
  stream.on('error', () => {});
  stream.write(Buffer.alloc(500_000));
  await tick();
  rawSyn(stack, 50000, ++clock);
  await tick();
  t.equal(stack.connections, 2);
  t.equal(stack.drops.get(Drop.syn_over_memory), 0);
  t.equal(stack.counters.tcpBuffered, 500_000);
  stack.abortAll();
  t.equal(stack.counters.tcpBuffered, 0);
});

t.test('SYN backlog: when full the oldest half-open entry is evicted; stale ones expire; completed ones leave it', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  const stack = new Stack(dev, (c) => conns.push(c), { maxHalfOpen: 2, halfOpenTimeoutMs: 1000, synCookies: false });
  rawSyn(stack, 50000, 0);
  rawSyn(stack, 50001, 1);
  t.equal(stack.counters.tcpHalfOpen, 2);
  rawSyn(stack, 50002, 2);
  await tick();
  t.equal(stack.connections, 2, 'the backlog never holds more than maxHalfOpen');
  t.equal(stack.drops.get(Drop.syn_backlog_evicted), 1);
  t.same(pump(dev, null, 2), [], 'the evicted (oldest, unanswered) entry goes silently: a real client would send its SYN again');
  t.equal(stack.counters.synRefused, 0, 'the new SYN itself was admitted');

  // A real client completes its handshake and leaves the backlog.
  let clock = 3;
  const client = makeClient(stack, 40000, () => clock);
  await tick();
  t.equal(stack.drops.get(Drop.syn_backlog_evicted), 2, 'the real client evicted the oldest spoofed entry');
  conns[conns.length - 1].accept();
  await tick();
  pump(dev, client, ++clock);
  t.equal(stack.counters.tcpHalfOpen, 1, 'only the one spoofed entry is still half-open');

  stack.tick(2000);
  t.equal(stack.drops.get(Drop.syn_backlog_timeout), 1, 'the stale half-open entry expired');
  t.equal(stack.counters.tcpHalfOpen, 0);
  t.equal(stack.connections, 1, 'the established connection is untouched');
  t.equal(client.conn.state, 'ESTABLISHED');
});

t.test('setLimits (a reload): a raised budget lets the paused write go on and admits SYNs; a lowered connection limit refuses the next SYN', async (t) => {
  const dev = new MemoryTun({ mtu: 1500 });
  const conns: PendingConnection[] = [];
  let clock = 0;
  const stack = new Stack(dev, (c) => conns.push(c), { memoryBudget: 64 * 1024, memoryFloorPerFlow: 16 * 1024 });
  const client = makeClient(stack, 40000, () => clock);
  await tick();
  const stream = conns[0].accept();
  await tick();
  pump(dev, client, ++clock);
  stream.on('error', () => {});
  stream.write(Buffer.alloc(200_000, 1));
  await tick();
  let resumed = false;
  stream.write(Buffer.alloc(100_000, 2), () => (resumed = true));
  for (let i = 0; i < 5; i++) await tick();
  t.notOk(resumed, 'over the budget: the write is held');
  t.equal(stack.counters.tcpBuffered, 200_000);
  rawSyn(stack, 50000, ++clock);
  await tick();
  t.equal(stack.drops.get(Drop.syn_over_memory), 1, 'and a new SYN refused');

  stack.setLimits({ maxConnections: stack.opts.maxConnections, maxHalfOpen: stack.opts.maxHalfOpen, synCookies: stack.opts.synCookies, memoryBudget: 1024 * 1024 });
  for (let i = 0; i < 5 && !resumed; i++) await tick();
  t.ok(resumed, 'the held write went on without waiting for an ACK');
  t.equal(stack.counters.tcpBuffered, 300_000, 'both writes queued under the new budget');
  rawSyn(stack, 50001, ++clock);
  await tick();
  t.equal(stack.connections, 2, 'a new SYN is admitted');

  stack.setLimits({ maxConnections: 2, maxHalfOpen: stack.opts.maxHalfOpen, synCookies: stack.opts.synCookies, memoryBudget: 1024 * 1024 });
  rawSyn(stack, 50002, ++clock);
  await tick();
  t.equal(stack.drops.get(Drop.syn_over_limit), 1, 'the lowered connection limit refuses the next SYN');
  t.equal(stack.connections, 2, 'open connections are kept');
  stack.abortAll();
});
