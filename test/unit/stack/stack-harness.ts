// A Stack over a MemoryTun on a fake clock, with client TcpConnections that
// speak real IPv4/TCP packets to it (our writer out, our parser in): step()
// moves time, flushes what the stack sent, hands each packet to the client of
// its port, and runs everyone's timers. Synchronous: no real clock, no sleeps.
import { Stack, type StackOptions } from '../../../src/stack/stack.js';
import { MemoryTun } from '../../../src/tun/memory-tun.js';
import { TcpConnection } from '../../../src/stack/tcp/tcp-connection.js';
import { DEFAULT_TCP_OPTIONS, type OutSegment, type PendingConnection, type Segment, type TcpOptions, type TcpSink } from '../../../src/stack/contracts.js';
import { writeTcpSegment } from '../../../src/stack/wire/segment-writer.js';
import { Ipv4View } from '../../../src/stack/wire/ipv4-view.js';
import { TcpView } from '../../../src/stack/wire/tcp-view.js';
import { fillSegment, newSegment } from '../../../src/stack/wire/tcp-options.js';
import { parseIpv4 } from '../../../src/net/address.js';

export const CLIENT = parseIpv4('198.18.0.1')!;
export const SERVER = parseIpv4('203.0.113.10')!;

export interface TestClient {
  conn: TcpConnection;
  port: number;
  events: string[];
  got: Buffer[];
  /** Segments the stack sent this client, as [flags, seq, ack]. */
  seen: [number, number, number][];
}

export class StackNet {
  readonly dev: MemoryTun;
  readonly stack: Stack;
  now = 0;
  readonly conns: PendingConnection[] = [];
  private readonly clients = new Map<number, TestClient>();
  /** Ports whose packets wait (a slow path) until resume(). */
  private readonly paused = new Map<number, Buffer[]>();
  private readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly seg: Segment = newSegment();
  private readonly slot = Buffer.alloc(70_000);

  /** onConnect: what the layer above does with a new connection (default: keep it in conns, unanswered). */
  constructor(opts: Partial<StackOptions> = {}, onConnect?: (c: PendingConnection, net: StackNet) => void, mtu = 1500) {
    this.dev = new MemoryTun({ mtu });
    // no clock option: the stack's own clock is the last now it was given
    this.stack = new Stack(this.dev, (c) => (this.conns.push(c), onConnect?.(c, this)), opts);
  }

  /** A client that opens a connection from `port` at the current time. */
  client(port: number, isn: number, opts: Partial<TcpOptions> = {}): TestClient {
    const c: TestClient = { conn: null as unknown as TcpConnection, port, events: [], got: [], seen: [] };
    const sink: TcpSink = {
      sendSegment: (s: OutSegment) => this.stack.input(this.slot, 0, writeTcpSegment(this.slot, CLIENT, SERVER, port, 80, s), this.now),
      onOpen: () => void c.events.push('open'),
      onData: (b, o, l) => void c.got.push(Buffer.from(b.subarray(o, o + l))),
      onPeerFin: () => void c.events.push('fin'),
      onWritable: () => {},
      onClosed: (r) => void c.events.push(`closed:${r}`),
    };
    this.clients.set(port, c);
    c.conn = TcpConnection.connect(sink, { ...DEFAULT_TCP_OPTIONS, mss: 1460, ...opts }, isn, this.now);
    return c;
  }

  /** Forget the client of a port (its kernel lost the connection): later packets to it go nowhere. */
  drop(port: number): void {
    this.clients.delete(port);
  }

  /** Hold packets to this port until resume(port). */
  pause(port: number): void {
    this.paused.set(port, []);
  }

  resume(port: number): void {
    const held = this.paused.get(port) ?? [];
    this.paused.delete(port);
    for (const p of held) this.toClient(p);
    this.deliver();
  }

  /** Delivers everything the stack sent so far; returns how many packets. */
  deliver(): number {
    this.dev.flushTx();
    let n = 0;
    for (let out = this.dev.takeTx(); out.length > 0; out = (this.dev.flushTx(), this.dev.takeTx())) {
      for (const p of out) {
        n++;
        this.toClient(p);
      }
    }
    return n;
  }

  private toClient(p: Buffer): void {
    if (this.ip.reset(p, 0, p.length) !== 0 || this.ip.protocol !== 6) return;
    if (this.tcp.reset(p, this.ip.payloadOffset, this.ip.payloadLength) !== 0) return;
    const held = this.paused.get(this.tcp.dstPort);
    if (held) return void held.push(p);
    fillSegment(this.tcp, this.seg);
    const c = this.clients.get(this.tcp.dstPort);
    if (!c) return;
    c.seen.push([this.seg.flags, this.seg.seq, this.seg.ack]);
    c.conn.receive(this.seg, this.now);
  }

  /** Moves time by ms in 10 ms ticks, delivering and running timers at each. */
  step(ms = 10): void {
    const until = this.now + ms;
    do {
      this.now = Math.min(until, this.now + 10);
      this.stack.tick(this.now);
      this.deliver();
      for (const c of this.clients.values()) c.conn.onTimer(this.now);
      this.deliver();
    } while (this.now < until);
  }
}
