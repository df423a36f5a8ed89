// The userspace TCP/IP stack: IPv4 and IPv6 packets in, packets out, TCP
// connections terminated and UDP relayed for any destination routed into the
// TUN, ICMP echo answered and ICMP errors sent where TCP and UDP need them.
// The caller drives it: `input()` per received packet, `tick()` on a timer. No
// per-packet allocation on the way in: one reused view per layer, one reused
// Segment, and addresses as numbers (IPv6 ones interned in an Ip6Table).
import { randomFillSync } from 'node:crypto';
import type { TunDevice } from '../tun/tun-device.js';
import {
  ACK,
  DEFAULT_TCP_OPTIONS,
  FIN,
  RST,
  SYN,
  type CloseReason,
  type Endpoint,
  type Family,
  type OutSegment,
  type Segment,
  type TcpOptions,
  type TcpSink,
} from './contracts.js';
import { Drop, DropCounters } from './drop-counters.js';
import { FlowTable } from './flow-table.js';
import { TimerWheel } from './timer-wheel.js';
import { Ipv4View } from './wire/ipv4-view.js';
import { Ipv6View } from './wire/ipv6-view.js';
import { Ip6Table, isIp6Id } from './wire/ip6-table.js';
import { parseIpv6Into } from '../net/address.js';
import { TcpView, addressSum, transportChecksumOk } from './wire/tcp-view.js';
import { fillSegment } from './wire/tcp-options.js';
import { fold, sumWords } from './wire/checksum.js';
import { writeTcpRst, writeTcpSegment } from './wire/segment-writer.js';
import { UdpView } from './wire/udp-view.js';
import {
  ICMP4,
  ICMP6,
  writeEchoReply,
  writeIcmpError,
  writeQuotedTcpHeaders,
  writeQuotedUdpHeaders,
  writeUdpDatagram,
} from './wire/datagram-writer.js';
import { UdpSessions, type UdpFlowEnd, type UdpFlowKey, type UdpOutput, type UdpSessionOptions } from '../proxy/tun/udp-sessions.js';
import { ipv4ToString, parseIpv4 } from '../net/address.js';
import { StatelessSegment, TcpConnection } from './tcp/tcp-connection.js';
import { SynCookies, TUPLE_WORDS_V6, newCookieDecoded } from './tcp/syn-cookie.js';
import { TcpStream, type ConnectionPort } from './tcp/tcp-stream.js';
import type { InboundConnection, RejectHow } from '../proxy/inbound.js';

const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ICMP6 = 58;
const IPV4_TCP_HEADERS = 40;
const IPV6_TCP_HEADERS = 60;
/** ICMP errors sent per second at most, and the burst (RFC 4443 §2.4 f; Linux's icmp_msgs_per_sec is 1000). */
const ICMP_ERRORS_PER_SEC = 1000;
const ICMP_ERROR_BURST = 50;

export interface StackOptions {
  tcp: Partial<TcpOptions>;
  /**
   * The largest packet accepted from the client side; bigger ones are answered
   * with "fragmentation needed" (IPv4 with DF) or "packet too big" (IPv6).
   * Default: the device's MTU (a TUN never hands over more, so this only bites
   * when set lower, e.g. to the uplink's path MTU).
   */
  mtu?: number;
  /**
   * IPv6 on (default). Off: every IPv6 packet is answered with ICMPv6
   * "administratively prohibited", so connects fail at once and nothing is relayed.
   */
  ipv6: boolean;
  /** Connections held at once (any state); a SYN beyond it gets a RST. */
  maxConnections: number;
  /** Connections waiting for their upstream (SYN seen, no SYN-ACK yet). */
  maxPending: number;
  /**
   * Half-open connections (SYN seen, handshake not complete): the SYN backlog.
   * When full, a new SYN is answered with a SYN cookie and leaves no state
   * (synCookies), or evicts the oldest half-open entry; either way memory is
   * bounded and real clients still get in. Default 1024: each entry costs an
   * upstream dial (we answer only once the upstream is up), so this also caps
   * the connections a spoofed flood makes us open per halfOpenTimeoutMs.
   */
  maxHalfOpen: number;
  /**
   * With the SYN backlog full, answer SYNs with SYN cookies (RFC 4987 §3.6, as
   * Linux does): the client's ACK then creates the connection. Default true;
   * false evicts the oldest half-open entry instead.
   */
  synCookies: boolean;
  /** A half-open connection older than this is reset (Linux gives up after ~63 s of SYN-ACK retries). */
  halfOpenTimeoutMs: number;
  /** Readable/writable high-water mark of each TcpStream. */
  streamHighWaterMark: number;
  /**
   * Gateway-wide cap on bytes buffered in TCP connections (send queues,
   * out-of-order and undelivered receive data). Over it: new SYNs get a RST,
   * writes from upstream pause and receive windows stop re-opening. 0 = none.
   */
  memoryBudget: number;
  /** Over the budget a flow may still hold this much, so no connection starves. */
  memoryFloorPerFlow: number;
  /** Relay UDP through kernel sockets; without it UDP is counted and dropped. */
  udp?: Partial<UdpSessionOptions>;
  /** Called when a UDP flow ends (for the connection log). */
  onUdpFlowEnd?: (e: UdpFlowEnd) => void;
  /**
   * The gateway's own DNS: UDP to address:53 is answered here instead of relayed;
   * address -1 answers port 53 of every destination (route-all's DNS hijack).
   */
  dns?: { address: number; answer: (query: Buffer) => Promise<Buffer | null> };
  /** The hostname behind a destination address (a fake IP), known before any byte flows. */
  hostnameOf?: (ip: number) => string | undefined;
  /** The same for an IPv6 destination, given in RFC 5952 text (once per connection). */
  hostnameOf6?: (address: string) => string | undefined;
}

export interface StackCounters {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  tcpActive: number;
  tcpPending: number;
  /** Connections whose handshake has not completed (SYN-RECEIVED). */
  tcpHalfOpen: number;
  /** SYNs answered with a SYN cookie (the backlog was full), and cookie ACKs that opened a connection. */
  synCookiesSent: number;
  synCookiesAccepted: number;
  tcpTotal: number;
  synRefused: number;
  dnsQueries: number;
  /** Segments handed to an existing connection. */
  tcpSegments: number;
  rstSent: number;
  retransmits: number;
  /** Bytes buffered in TCP connections now, as counted against memoryBudget. */
  tcpBuffered: number;
  /** Echo requests answered (ICMP and ICMPv6). */
  icmpEchoReplies: number;
  /** ICMP and ICMPv6 errors sent to clients. */
  icmpErrors: number;
  /** Neighbour discovery, router solicitations, MLD and other link-local chatter, ignored on purpose. */
  ndIgnored: number;
}

export type ConnectHandler = (conn: InboundConnection) => void;

let nextConnId = 1;

/** One TCP flow: the connection's sink, the stream's port and the proxy's inbound request in one object. */
class TcpFlow implements TcpSink, ConnectionPort, InboundConnection {
  readonly id = nextConnId++;
  readonly inbound = 'tun' as const;
  readonly protocol = 'tcp' as const;
  conn!: TcpConnection;
  stream: TcpStream | null = null;
  pending = true;
  closed = false;
  /** Timer-wheel bookkeeping. */
  deadline = Infinity;
  wheelDue = Infinity;
  /** consumed() calls that arrived while the connection was busy. */
  deferredConsumed = 0;
  /** This flow's share of Stack.counters.tcpBuffered. */
  accounted = 0;
  /** Handshake not complete; bornAt orders the SYN backlog. */
  halfOpen = true;
  bornAt = 0;
  /** consumed() held back while over the memory budget: the client's window stays shut. */
  budgetHeldConsumed = 0;
  /** A write refused for the memory budget: retry it when memory frees up. */
  budgetBlocked = false;
  /** The client's initial sequence number: an ICMP error about its SYN must quote it. */
  clientIsn = 0;
  private srcEp: Endpoint | null = null;
  private dstEp: Endpoint | null = null;

  constructor(
    private readonly stack: Stack,
    /** Client address/port (the packet's source) and the address it dialled. */
    readonly clientIp: number,
    readonly serverIp: number,
    readonly clientPort: number,
    readonly serverPort: number,
  ) {}

  get family(): Family {
    return isIp6Id(this.clientIp) ? 6 : 4;
  }
  get src(): Endpoint {
    return (this.srcEp ??= { family: this.family, address: this.stack.addressText(this.clientIp), port: this.clientPort });
  }
  get dst(): Endpoint {
    return (this.dstEp ??= { family: this.family, address: this.stack.addressText(this.serverIp), port: this.serverPort });
  }
  get hostname(): string | undefined {
    const o = this.stack.opts;
    return this.family === 4 ? o.hostnameOf?.(this.serverIp) : o.hostnameOf6?.(this.dst.address);
  }

  // ---- InboundConnection ----
  accept(): TcpStream {
    if (this.closed) throw new Error('client connection already gone');
    if (!this.pending) throw new Error('already accepted');
    this.pending = false;
    this.stack.counters.tcpPending--;
    this.stream = new TcpStream(this, this.stack.opts.streamHighWaterMark);
    this.stack.run(this, RUN_ACCEPT, null, 0);
    return this.stream;
  }
  reject(how: RejectHow): void {
    if (this.closed) return;
    if (how === 'unreachable' && this.pending && this.halfOpen) {
      // The client still waits for its SYN-ACK: tell it the host cannot be reached, as a router would.
      this.stack.sendTcpHostUnreachable(this);
      this.stack.run(this, RUN_DROP, null, 0);
      return;
    }
    this.stack.run(this, RUN_ABORT, null, 0);
  }
  /** Bytes relayed: delivered from the client, and accepted for the client. */
  counters() {
    return { up: this.conn.bytesReceived, down: this.written };
  }
  private written = 0;

  // ---- ConnectionPort (from the stream) ----
  write(data: Buffer): number {
    if (this.closed) return 0;
    const n = this.stack.run(this, RUN_WRITE, data, 0);
    this.written += n;
    return n;
  }
  consumed(n: number): void {
    if (!this.closed) this.stack.run(this, RUN_CONSUMED, null, n);
  }
  close(): void {
    if (!this.closed) this.stack.run(this, RUN_CLOSE, null, 0);
  }
  abort(): void {
    if (!this.closed) this.stack.run(this, RUN_ABORT, null, 0);
  }

  // ---- TcpSink (from the connection) ----
  sendSegment(seg: OutSegment): void {
    this.stack.emitSegment(this, seg);
  }
  onOpen(): void {
    this.stack.handshakeDone(this);
  }
  onData(data: Buffer, offset: number, length: number): void {
    this.stream?.deliver(data, offset, length);
  }
  onPeerFin(): void {
    this.stream?.peerFin();
  }
  onWritable(): void {
    this.stream?.writableAgain();
  }
  onClosed(reason: CloseReason): void {
    this.stack.forget(this, reason);
    this.stream?.connectionClosed(reason);
  }
}

/** Flowless ACKs are checked for cookies until this long after the last cookie went out (two key periods). */
const COOKIE_RECENT_MS = 130_000;

const RUN_ACCEPT = 0;
const RUN_ABORT = 1;
/** Abort without a RST to a connection not yet answered (SYN backlog eviction). */
const RUN_DROP = 8;
const RUN_WRITE = 2;
const RUN_CONSUMED = 3;
const RUN_CLOSE = 4;

export class Stack implements UdpOutput {
  readonly opts: StackOptions;
  readonly tcpOpts: TcpOptions;
  readonly drops = new DropCounters();
  readonly counters: StackCounters = {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    tcpActive: 0,
    tcpPending: 0,
    tcpHalfOpen: 0,
    synCookiesSent: 0,
    synCookiesAccepted: 0,
    tcpTotal: 0,
    synRefused: 0,
    dnsQueries: 0,
    tcpSegments: 0,
    rstSent: 0,
    retransmits: 0,
    tcpBuffered: 0,
    icmpEchoReplies: 0,
    icmpErrors: 0,
    ndIgnored: 0,
  };
  /** IPv6 addresses as numeric ids, shared with the UDP relay. */
  readonly ip6 = new Ip6Table();
  private readonly ip6View = new Ipv6View();
  /** The same TCP options with the MSS for IPv6's longer header. */
  readonly tcpOpts6: TcpOptions;
  /** Largest packet accepted from the client side. */
  readonly mtu: number;
  /** Token bucket for ICMP errors. */
  private icmpTokens = ICMP_ERROR_BURST;
  private icmpRefilledAt = 0;
  /** Rebuilt headers quoted by errors sent after the packet is gone. */
  private readonly quote = Buffer.alloc(64);
  private readonly flows = new FlowTable<TcpFlow>();
  /** Closed flows leave it when their slot next comes round, not at their far (keepalive) deadline. */
  private readonly wheel = new TimerWheel<TcpFlow>(10, 4096, (f) => f.closed);
  private readonly ip = new Ipv4View();
  private readonly tcp = new TcpView();
  private readonly udpView = new UdpView();
  /** The UDP relay, when enabled. */
  readonly udp: UdpSessions | null;
  private readonly seg: Segment = {
    seq: 0, ack: 0, flags: 0, window: 0, mss: -1, wscale: -1, sackOk: false, tsVal: -1, tsEcr: 0,
    sack: new Uint32Array(8), sackCount: 0, payload: Buffer.alloc(0), payloadOffset: 0, payloadLength: 0,
  };
  private readonly isnPool = new Uint32Array(256);
  private isnNext = 256;
  /** Set while a connection method runs: stream callbacks re-entering it are deferred. */
  private dispatching: TcpFlow | null = null;
  private readonly deferred: TcpFlow[] = [];
  private flushQueued = false;
  private readonly flush = () => {
    this.flushQueued = false;
    this.dev.flushTx();
  };
  private lastNow = 0;

  constructor(
    private readonly dev: TunDevice,
    private readonly onConnect: ConnectHandler,
    opts: Partial<StackOptions> = {},
  ) {
    this.opts = {
      ...opts,
      tcp: opts.tcp ?? {},
      maxConnections: opts.maxConnections ?? 100_000,
      maxPending: opts.maxPending ?? 4096,
      maxHalfOpen: opts.maxHalfOpen ?? 1024,
      synCookies: opts.synCookies ?? true,
      halfOpenTimeoutMs: opts.halfOpenTimeoutMs ?? 20_000,
      streamHighWaterMark: opts.streamHighWaterMark ?? 256 * 1024,
      memoryBudget: opts.memoryBudget ?? 0,
      memoryFloorPerFlow: opts.memoryFloorPerFlow ?? 16 * 1024,
      ipv6: opts.ipv6 ?? true,
    };
    this.mtu = Math.min(opts.mtu ?? dev.mtu, dev.mtu);
    this.udp = opts.udp ? new UdpSessions(this, opts.udp, opts.onUdpFlowEnd, undefined, this.ip6) : null;
    const tcp = { ...DEFAULT_TCP_OPTIONS, mss: this.mtu - IPV4_TCP_HEADERS, ...opts.tcp };
    // The smallest window-scale shift that can advertise the whole receive buffer (RFC 7323 §2.3).
    if (opts.tcp?.wscale === undefined) {
      let shift = 0;
      while (shift < 14 && tcp.rcvBuf >> shift > 0xffff) shift++;
      tcp.wscale = shift;
    }
    this.tcpOpts = tcp;
    this.tcpOpts6 = { ...tcp, mss: Math.min(tcp.mss, this.mtu - IPV6_TCP_HEADERS) };
  }

  /** An address number as text: per connection, never per packet. */
  addressText(ip: number): string {
    return isIp6Id(ip) ? this.ip6.toString(ip) : ipv4ToString(ip);
  }

  get connections(): number {
    return this.flows.size;
  }

  /** Up to `max` connections' variables and timers, for a diagnostic dump. */
  debugFlows(max = 50): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const now = performance.now();
    this.flows.forEach((f) => {
      if (out.length >= max) return;
      out.push({ src: `${this.addressText(f.clientIp)}:${f.clientPort}`, dst: `${this.addressText(f.serverIp)}:${f.serverPort}`, wheelIn: Math.round(f.wheelDue - now), ...f.conn.debugState(now) });
    });
    return out;
  }

  /** Connections by TCP state, for the status file (O(connections): call it rarely). */
  tcpStates(): Record<string, number> {
    const out: Record<string, number> = {};
    this.flows.forEach((f) => {
      const k = `tcp_state_${f.conn.state.toLowerCase().replace('-', '_')}`;
      out[k] = (out[k] ?? 0) + 1;
    });
    return out;
  }

  /** Connections to this address are open (a fake IP in use must not be recycled). */
  hasFlowsTo(ip: number): boolean {
    return (this.perServer.get(ip) ?? 0) > 0;
  }
  private readonly perServer = new Map<number, number>();

  /** hasFlowsTo for an address in text, IPv4 or IPv6. */
  hasFlowsToAddress(address: string): boolean {
    const v4 = parseIpv4(address);
    if (v4 !== null) return this.hasFlowsTo(v4);
    if (!parseIpv6Into(address, this.quote, 0)) return false;
    const id = this.ip6.lookup(this.quote, 0);
    return id >= 0 && this.hasFlowsTo(id);
  }

  /** One IP packet from the device. The buffer is only read during the call. */
  input(buf: Buffer, offset: number, length: number, now: number): void {
    this.lastNow = now;
    this.counters.packetsIn++;
    this.counters.bytesIn += length;
    if (length < 1) return this.drops.count(Drop.ipv4_truncated);
    const version = buf[offset] >> 4;
    if (version === 4) return this.input4(buf, offset, length, now);
    if (version === 6) return this.input6(buf, offset, length, now);
    this.drops.count(Drop.ipv4_bad_version);
  }

  private input4(buf: Buffer, offset: number, length: number, now: number): void {
    const ip = this.ip;
    const reason = ip.reset(buf, offset, length);
    if (reason !== 0) return this.drops.count(reason);
    if (ip.totalLength > this.mtu) return this.tooBig(buf, offset, ip.totalLength, ip.dst, ip.src, (buf[offset + 6] & 0x40) !== 0);
    if (ip.isFragment) return this.drops.count(Drop.ipv4_fragment);
    const proto = ip.protocol;
    const src = ip.src;
    const dst = ip.dst;
    if (proto === PROTO_TCP) return this.inputTcp(buf, ip.payloadOffset, ip.payloadLength, src, dst, addressSum(buf, offset, 4), now);
    if (proto === PROTO_UDP) return this.inputUdp(buf, ip.payloadOffset, ip.payloadLength, src, dst, addressSum(buf, offset, 4), 4, now);
    if (proto === PROTO_ICMP) return this.inputIcmp(buf, ip.payloadOffset, ip.payloadLength, src, dst, -1);
    this.drops.count(Drop.unknown_protocol);
  }

  private input6(buf: Buffer, offset: number, length: number, now: number): void {
    const ip = this.ip6View;
    const reason = ip.reset(buf, offset, length);
    if (reason !== 0) return this.drops.count(reason);
    const proto = ip.protocol;
    // Router solicitations, MLD reports, neighbour discovery: the kernel's chatter on any new link.
    if (ip.dstIsMulticast || (proto === PROTO_ICMP6 && ip.payloadLength > 0 && isLinkLocalIcmp6(buf[ip.payloadOffset]))) {
      this.counters.ndIgnored++;
      return;
    }
    const total = ip.payloadOffset + ip.payloadLength - offset;
    const src = this.ip6.intern(buf, ip.srcOffset);
    const dst = this.ip6.intern(buf, ip.dstOffset);
    try {
      if (!this.opts.ipv6) {
        this.drops.count(Drop.ipv6_disabled);
        this.sendIcmpError(dst, src, ICMP6.unreachable, ICMP6.adminProhibited, 0, buf, offset, total);
        return;
      }
      if (total > this.mtu) return this.tooBig(buf, offset, total, dst, src, true);
      const asum = addressSum(buf, offset, 6);
      if (proto === PROTO_TCP) return this.inputTcp(buf, ip.payloadOffset, ip.payloadLength, src, dst, asum, now);
      if (proto === PROTO_UDP) return this.inputUdp(buf, ip.payloadOffset, ip.payloadLength, src, dst, asum, 6, now);
      if (proto === PROTO_ICMP6) return this.inputIcmp(buf, ip.payloadOffset, ip.payloadLength, src, dst, asum);
      this.drops.count(Drop.unknown_protocol);
    } finally {
      this.ip6.release(src);
      this.ip6.release(dst);
    }
  }

  /** Answers a packet over the MTU with "fragmentation needed" / "packet too big" carrying our MTU. */
  private tooBig(buf: Buffer, offset: number, total: number, from: number, to: number, dontFragment: boolean): void {
    this.drops.count(Drop.packet_too_big);
    // Without DF an IPv4 router would fragment; we do not reassemble, so it is only dropped.
    if (!dontFragment) return;
    if (isIp6Id(from)) this.sendIcmpError(from, to, ICMP6.packetTooBig, 0, this.mtu, buf, offset, total);
    else this.sendIcmpError(from, to, ICMP4.unreachable, ICMP4.fragNeeded, this.mtu & 0xffff, buf, offset, total);
  }

  /**
   * Echo requests get replies from the address they were sent to: the gateway
   * answers for every destination routed into the TUN (see DECISIONS "ICMP").
   * addrSum is -1 for ICMP over IPv4 (no pseudo-header).
   */
  private inputIcmp(buf: Buffer, off: number, len: number, src: number, dst: number, addrSum: number): void {
    if (len < 8) return this.drops.count(Drop.icmp_truncated);
    const ok = addrSum < 0 ? fold(sumWords(buf, off, len, 0)) === 0xffff : transportChecksumOk(buf, off, len, addrSum, PROTO_ICMP6);
    if (!ok) return this.drops.count(Drop.icmp_bad_checksum);
    const type = buf[off];
    if (type !== (addrSum < 0 ? ICMP4.echoRequest : ICMP6.echoRequest)) return this.drops.count(Drop.icmp_unsupported);
    if (len + (addrSum < 0 ? 20 : 40) > this.dev.mtu) return this.drops.count(Drop.icmp_unsupported);
    this.counters.icmpEchoReplies++;
    this.commit(writeEchoReply(this.dev.txSlot(), dst, src, buf, off, len, this.ip6));
  }

  /** One ICMP error to the client, within the rate limit. */
  private sendIcmpError(from: number, to: number, type: number, code: number, rest: number, quote: Buffer, qoff: number, qlen: number): void {
    const now = this.lastNow;
    if (this.icmpTokens < ICMP_ERROR_BURST) {
      this.icmpTokens = Math.min(ICMP_ERROR_BURST, this.icmpTokens + ((now - this.icmpRefilledAt) * ICMP_ERRORS_PER_SEC) / 1000);
    }
    this.icmpRefilledAt = now;
    if (this.icmpTokens < 1) return this.drops.count(Drop.icmp_rate_limited);
    this.icmpTokens--;
    this.counters.icmpErrors++;
    this.commit(writeIcmpError(this.dev.txSlot(), from, to, type, code, rest, quote, qoff, qlen, this.ip6));
  }

  private inputUdp(buf: Buffer, off: number, len: number, src: number, dst: number, addrSum: number, family: Family, now: number): void {
    const dns = this.opts.dns;
    if (this.udp === null && dns === undefined) return this.drops.count(Drop.udp_unsupported);
    const u = this.udpView;
    const r = u.reset(buf, off, len, addrSum, family);
    if (r !== 0) return this.drops.count(r);
    if (dns !== undefined && u.dstPort === 53 && (dst === dns.address || dns.address === -1)) {
      return this.answerDns(dns, src, dst, u.srcPort, buf.subarray(u.payloadOffset, u.payloadOffset + u.payloadLength));
    }
    if (this.udp === null) return this.drops.count(Drop.udp_unsupported);
    this.udp.onDatagram(src, dst, u.srcPort, u.dstPort, buf, u.payloadOffset, u.payloadLength, now);
  }

  private answerDns(dns: NonNullable<StackOptions['dns']>, client: number, server: number, port: number, view: Buffer): void {
    this.counters.dnsQueries++;
    const v6 = isIp6Id(client);
    if (v6) {
      // The reply comes later: hold both addresses until then.
      this.ip6.acquire(client);
      this.ip6.acquire(server);
    }
    dns.answer(Buffer.from(view)).then(
      (reply) => {
        // The answer comes from the address the client asked.
        if (reply) this.sendUdp(server, client, 53, port, reply, 0, reply.length);
      },
      () => this.drops.count(Drop.internal_error),
    ).finally(() => {
      if (v6) {
        this.ip6.release(client);
        this.ip6.release(server);
      }
    });
  }

  // ---- UdpOutput: datagrams and ICMP errors towards the client ----
  sendUdp(src: number, dst: number, sport: number, dport: number, payload: Buffer, off: number, len: number): void {
    if (len + (isIp6Id(src) ? 48 : 28) > this.dev.mtu) {
      this.drops.count(Drop.udp_too_big);
      return;
    }
    this.commit(writeUdpDatagram(this.dev.txSlot(), src, dst, sport, dport, payload, off, len, this.ip6));
  }

  sendPortUnreachable(f: UdpFlowKey): void {
    this.sendUdpError(f, isIp6Id(f.serverIp) ? ICMP6.portUnreachable : ICMP4.portUnreachable);
  }

  sendHostUnreachable(f: UdpFlowKey): void {
    this.sendUdpError(f, isIp6Id(f.serverIp) ? ICMP6.addressUnreachable : ICMP4.hostUnreachable);
  }

  private sendUdpError(f: UdpFlowKey, code: number): void {
    const n = writeQuotedUdpHeaders(this.quote, f.clientIp, f.serverIp, f.clientPort, f.serverPort, 8, this.ip6);
    this.sendIcmpError(f.serverIp, f.clientIp, isIp6Id(f.serverIp) ? ICMP6.unreachable : ICMP4.unreachable, code, 0, this.quote, 0, n);
  }

  /** The upstream of a connection not yet answered cannot be reached: ICMP host unreachable about its SYN. */
  sendTcpHostUnreachable(flow: TcpFlow): void {
    const v6 = isIp6Id(flow.serverIp);
    const n = writeQuotedTcpHeaders(this.quote, flow.clientIp, flow.serverIp, flow.clientPort, flow.serverPort, flow.clientIsn, this.ip6);
    this.sendIcmpError(
      flow.serverIp, flow.clientIp, v6 ? ICMP6.unreachable : ICMP4.unreachable, v6 ? ICMP6.addressUnreachable : ICMP4.hostUnreachable, 0, this.quote, 0, n,
    );
  }

  private inputTcp(buf: Buffer, off: number, len: number, src: number, dst: number, addrSum: number, now: number): void {
    const tcp = this.tcp;
    const r = tcp.reset(buf, off, len);
    if (r !== 0) return this.drops.count(r);
    if (!transportChecksumOk(buf, off, len, addrSum, PROTO_TCP)) return this.drops.count(Drop.tcp_bad_checksum);
    const seg = this.seg;
    const optReason = fillSegment(tcp, seg);
    if (optReason !== 0) return this.drops.count(optReason);
    const sport = tcp.srcPort;
    const dport = tcp.dstPort;
    let flow = this.flows.get4(src, dst, sport, dport);
    const flags = seg.flags;
    if (flow !== undefined && (flags & (SYN | ACK | RST)) === SYN) {
      const st = flow.conn.state;
      // A fresh SYN on a connection that is finishing reuses the 4-tuple (RFC 6191 in spirit).
      if (st === 'TIME-WAIT' || st === 'CLOSED') {
        this.forget(flow, 'time-wait-expired');
        flow = undefined;
      }
    }
    if (flow === undefined) {
      if ((flags & (SYN | ACK | RST | FIN)) === SYN) return this.openFlow(src, dst, sport, dport, now);
      if ((flags & (SYN | ACK | RST)) === ACK && now - this.lastCookieAt < COOKIE_RECENT_MS && this.openFromCookie(src, dst, sport, dport, now)) return;
      this.drops.count(Drop.no_flow);
      if ((flags & RST) === 0) this.replyRst(src, dst, sport, dport, seg);
      return;
    }
    this.counters.tcpSegments++;
    this.run(flow, -1, null, 0);
  }

  private openFlow(src: number, dst: number, sport: number, dport: number, now: number): void {
    const overLimit = this.flows.size >= this.opts.maxConnections || this.counters.tcpPending >= this.opts.maxPending;
    if (overLimit || this.overBudget()) {
      this.counters.synRefused++;
      this.drops.count(overLimit ? Drop.syn_over_limit : Drop.syn_over_memory);
      this.replyRst(src, dst, sport, dport, this.seg);
      return;
    }
    if (this.counters.tcpHalfOpen >= this.opts.maxHalfOpen) {
      if (this.opts.synCookies) return this.sendCookie(src, dst, sport, dport, now);
      this.evictOldestHalfOpen();
    }
    const flow = new TcpFlow(this, src, dst, sport, dport);
    const v6 = isIp6Id(src);
    if (v6) {
      this.ip6.acquire(src);
      this.ip6.acquire(dst);
    }
    flow.clientIsn = this.seg.seq;
    flow.conn = TcpConnection.fromSyn(flow, v6 ? this.tcpOpts6 : this.tcpOpts, this.nextIsn(), this.seg, now);
    flow.bornAt = now;
    this.halfOpenQueue.push(flow);
    this.counters.tcpHalfOpen++;
    this.addFlow(flow);
  }

  /** Files a new flow (its IPv6 ids already acquired) and hands it to the proxy core. */
  private addFlow(flow: TcpFlow): void {
    this.flows.set4(flow.clientIp, flow.serverIp, flow.clientPort, flow.serverPort, flow);
    this.perServer.set(flow.serverIp, (this.perServer.get(flow.serverIp) ?? 0) + 1);
    this.counters.tcpActive++;
    this.counters.tcpPending++;
    this.counters.tcpTotal++;
    this.reschedule(flow);
    this.account(flow);
    this.onConnect(flow);
  }

  private readonly cookies = new SynCookies();
  private readonly cookieSeg = new StatelessSegment();
  private readonly cookieDecoded = newCookieDecoded();
  /** When the last cookie went out: flowless ACKs are checked for cookies only for a while after. */
  private lastCookieAt = -Infinity;

  /** The 4-tuple as words for the cookie codec (an IPv6 id unfolded into its address). */
  private cookieTuple(src: number, dst: number, sport: number, dport: number): number {
    const c = this.cookies;
    if (!isIp6Id(src)) return c.setV4(src, dst, sport, dport);
    const w = c.tuple;
    for (let k = 0; k < 4; k++) {
      w[k] = this.ip6.word(src, k);
      w[4 + k] = this.ip6.word(dst, k);
    }
    w[8] = ((sport << 16) | dport) >>> 0;
    return TUPLE_WORDS_V6;
  }

  /** The SYN backlog is full: answer with a SYN cookie and keep nothing (RFC 4987 §3.6). */
  private sendCookie(src: number, dst: number, sport: number, dport: number, now: number): void {
    const seg = this.seg;
    const iss = this.cookies.make(this.cookieTuple(src, dst, sport, dport), seg.seq, seg.mss, now);
    TcpConnection.cookieSynAck(this.cookieSeg, isIp6Id(src) ? this.tcpOpts6 : this.tcpOpts, iss, seg, now);
    this.commit(writeTcpSegment(this.dev.txSlot(), dst, src, dport, sport, this.cookieSeg, this.ip6));
    this.counters.synCookiesSent++;
    this.lastCookieAt = now;
  }

  /**
   * An ACK without a flow: when ack - 1 is one of our cookies the connection is
   * created ESTABLISHED (not half-open) and, like any new one, waits for the
   * proxy core's accept. False when it is not a cookie.
   */
  private openFromCookie(src: number, dst: number, sport: number, dport: number, now: number): boolean {
    const seg = this.seg;
    const d = this.cookieDecoded;
    if (!this.cookies.checkAck(this.cookieTuple(src, dst, sport, dport), seg.seq, seg.ack, seg.tsVal, seg.tsEcr, now, d)) return false;
    const overLimit = this.flows.size >= this.opts.maxConnections || this.counters.tcpPending >= this.opts.maxPending;
    if (overLimit || this.overBudget()) {
      this.counters.synRefused++;
      this.drops.count(overLimit ? Drop.syn_over_limit : Drop.syn_over_memory);
      this.replyRst(src, dst, sport, dport, seg);
      return true;
    }
    const flow = new TcpFlow(this, src, dst, sport, dport);
    const v6 = isIp6Id(src);
    if (v6) {
      this.ip6.acquire(src);
      this.ip6.acquire(dst);
    }
    flow.halfOpen = false;
    flow.clientIsn = (seg.seq - 1) >>> 0;
    flow.bornAt = now;
    flow.conn = TcpConnection.fromCookie(flow, v6 ? this.tcpOpts6 : this.tcpOpts, (seg.ack - 1) >>> 0, seg, d, now);
    this.counters.synCookiesAccepted++;
    this.addFlow(flow);
    return true;
  }

  /**
   * Runs one operation on a flow's connection with the clock, then files its
   * next deadline. Stream callbacks that re-enter the connection while it is
   * busy are deferred until it returns.
   */
  run(flow: TcpFlow, op: number, data: Buffer | null, n: number): number {
    if (this.dispatching !== null) {
      if (op === RUN_CONSUMED) {
        if (flow.deferredConsumed === 0) this.deferred.push(flow);
        flow.deferredConsumed += n;
        return 0;
      }
      if (op === RUN_WRITE) {
        // Refused for now; tell the stream to retry once the connection is free.
        queueMicrotask(() => flow.stream?.writableAgain());
        return 0;
      }
      if (op !== -1) {
        queueMicrotask(() => this.run(flow, op, data, n));
        return 0;
      }
    }
    if (op === RUN_WRITE && this.overBudget() && flow.accounted >= this.opts.memoryFloorPerFlow) {
      // Pause this upstream: the stream keeps the chunk and retries when memory frees up.
      if (!flow.budgetBlocked) {
        flow.budgetBlocked = true;
        this.budgetWaiters.push(flow);
      }
      return 0;
    }
    if (op === RUN_CONSUMED && this.overBudget() && flow.accounted >= this.opts.memoryFloorPerFlow) {
      // Keep the client's window from re-opening; the bytes themselves are gone from memory.
      if (flow.budgetHeldConsumed === 0) this.budgetWaiters.push(flow);
      flow.budgetHeldConsumed += n;
      this.account(flow);
      return 0;
    }
    const now = op === -1 ? this.lastNow : this.clock();
    const conn = flow.conn;
    let result = 0;
    this.dispatching = flow;
    try {
      switch (op) {
        case -1:
          conn.receive(this.seg, now);
          break;
        case RUN_ACCEPT:
          conn.accept(now);
          break;
        case RUN_ABORT:
          conn.abort(now);
          break;
        case RUN_DROP:
          conn.abort(now, true);
          break;
        case RUN_WRITE:
          result = conn.write(data!, now);
          break;
        case RUN_CONSUMED:
          conn.consumed(n, now);
          break;
        case RUN_CLOSE:
          conn.close(now);
          break;
      }
    } catch (e) {
      // One guard per operation: a bug resets only this flow.
      this.drops.count(Drop.internal_error);
      this.dispatching = null;
      this.internalError(flow, e as Error);
      return 0;
    }
    this.dispatching = null;
    if (!flow.closed) {
      this.reschedule(flow);
      this.account(flow);
    }
    if (this.deferred.length > 0) this.runDeferred();
    return result;
  }

  /** SYN backlog in arrival order; entries that completed or closed are skipped lazily. */
  private halfOpenQueue: TcpFlow[] = [];
  private halfOpenHead = 0;

  /** The handshake completed: the flow leaves the SYN backlog. */
  handshakeDone(flow: TcpFlow): void {
    if (!flow.halfOpen) return;
    flow.halfOpen = false;
    this.counters.tcpHalfOpen--;
  }

  /** The oldest still half-open flow, dropping finished entries off the front. */
  private oldestHalfOpen(): TcpFlow | undefined {
    const q = this.halfOpenQueue;
    while (this.halfOpenHead < q.length && !q[this.halfOpenHead].halfOpen) this.halfOpenHead++;
    if (this.halfOpenHead > 1024 && this.halfOpenHead * 2 > q.length) {
      this.halfOpenQueue = q.slice(this.halfOpenHead);
      this.halfOpenHead = 0;
    }
    return this.halfOpenQueue[this.halfOpenHead];
  }

  private evictOldestHalfOpen(): void {
    const f = this.oldestHalfOpen();
    if (f === undefined) return;
    this.drops.count(Drop.syn_backlog_evicted);
    // Unanswered, it goes silently: a real client's SYN comes again in a second and
    // gets another chance, where a RST would have failed its connect at once.
    this.run(f, RUN_DROP, null, 0);
    if (!f.closed) this.forget(f, 'aborted'); // abort always closes; this only guards the count
  }

  /** Resets half-open flows older than halfOpenTimeoutMs (O(1) per expired entry). */
  private expireHalfOpen(now: number): void {
    for (let f = this.oldestHalfOpen(); f !== undefined && now - f.bornAt >= this.opts.halfOpenTimeoutMs; f = this.oldestHalfOpen()) {
      this.drops.count(Drop.syn_backlog_timeout);
      this.run(f, RUN_ABORT, null, 0);
      if (!f.closed) this.forget(f, 'aborted');
    }
  }

  /** Over the gateway-wide memory budget? */
  private overBudget(): boolean {
    const b = this.opts.memoryBudget;
    return b > 0 && this.counters.tcpBuffered > b;
  }

  /** Flows paused by the budget (a write refused or a window held shut), woken once under it. */
  private readonly budgetWaiters: TcpFlow[] = [];

  /** O(1): moves the flow's delta into the global total; wakes paused flows once under budget. */
  private account(flow: TcpFlow): void {
    // Held-back consumed bytes are already freed, so they do not count.
    const bytes = flow.closed ? 0 : Math.max(0, flow.conn.bufferedBytes - flow.budgetHeldConsumed);
    this.counters.tcpBuffered += bytes - flow.accounted;
    flow.accounted = bytes;
    if (this.budgetWaiters.length > 0 && !this.overBudget() && !this.waking) {
      this.waking = true;
      queueMicrotask(this.wakeBudgetWaiters);
    }
  }
  private waking = false;

  private readonly wakeBudgetWaiters = () => {
    this.waking = false;
    const all = this.budgetWaiters.splice(0);
    for (const f of all) {
      if (f.closed) continue;
      if (f.budgetBlocked) {
        f.budgetBlocked = false;
        f.stream?.writableAgain();
      }
      const held = f.budgetHeldConsumed;
      if (held > 0) {
        f.budgetHeldConsumed = 0;
        this.run(f, RUN_CONSUMED, null, held);
      }
    }
  };

  private runDeferred(): void {
    while (this.deferred.length > 0) {
      const f = this.deferred.pop()!;
      const n = f.deferredConsumed;
      f.deferredConsumed = 0;
      if (n > 0 && !f.closed) this.run(f, RUN_CONSUMED, null, n);
    }
  }

  private internalError(flow: TcpFlow, err: Error): void {
    this.internalErrors.push(err);
    if (this.internalErrors.length > 16) this.internalErrors.shift();
    try {
      flow.conn.abort(this.lastNow);
    } catch {
      // already broken: drop it from the table below
    }
    if (!flow.closed) flow.onClosed('aborted');
  }
  /** The last internal errors, for the rate-limited log line of the caller. */
  readonly internalErrors: Error[] = [];

  /** Advances timers. Call every few ms and after each batch. */
  tick(now: number): void {
    this.lastNow = now;
    this.wheel.advance(now, this.onDue);
    this.expireHalfOpen(now);
    this.udp?.sweep(now);
  }

  private readonly onDue = (flow: TcpFlow) => {
    if (flow.closed) return;
    flow.wheelDue = Infinity;
    const d = flow.conn.nextDeadline();
    if (d <= this.lastNow) this.runTimer(flow);
    else this.reschedule(flow);
  };

  private runTimer(flow: TcpFlow): void {
    this.dispatching = flow;
    try {
      flow.conn.onTimer(this.lastNow);
    } catch (e) {
      this.dispatching = null;
      this.drops.count(Drop.internal_error);
      this.internalError(flow, e as Error);
      return;
    }
    this.dispatching = null;
    if (!flow.closed) {
      this.reschedule(flow);
      this.account(flow);
    }
    if (this.deferred.length > 0) this.runDeferred();
  }

  private reschedule(flow: TcpFlow): void {
    const d = flow.conn.nextDeadline();
    flow.deadline = d;
    // Lazy: only file earlier deadlines; a later one is re-checked when its slot fires.
    if (d < flow.wheelDue) {
      flow.wheelDue = d;
      this.wheel.schedule(flow, d);
    }
  }

  /** Called once per flow when its connection closes. */
  forget(flow: TcpFlow, _reason: CloseReason): void {
    if (flow.closed) return;
    flow.closed = true;
    this.flows.delete4(flow.clientIp, flow.serverIp, flow.clientPort, flow.serverPort);
    const n = (this.perServer.get(flow.serverIp) ?? 1) - 1;
    if (n > 0) this.perServer.set(flow.serverIp, n);
    else this.perServer.delete(flow.serverIp);
    this.counters.tcpActive--;
    if (flow.halfOpen) {
      flow.halfOpen = false;
      this.counters.tcpHalfOpen--;
    }
    if (flow.pending) {
      flow.pending = false;
      this.counters.tcpPending--;
    }
    this.counters.retransmits += flow.conn.retransmits;
    this.counters.tcpBuffered -= flow.accounted;
    flow.accounted = 0;
    if (isIp6Id(flow.clientIp)) {
      this.ip6.release(flow.clientIp);
      this.ip6.release(flow.serverIp);
    }
  }

  emitSegment(flow: TcpFlow, seg: OutSegment): void {
    const slot = this.dev.txSlot();
    const len = writeTcpSegment(slot, flow.serverIp, flow.clientIp, flow.serverPort, flow.clientPort, seg, this.ip6);
    this.commit(len);
    if (seg.flags & RST) this.counters.rstSent++;
  }

  /** RFC 9293 §3.10.7.1: answer a segment that has no connection. */
  private replyRst(src: number, dst: number, sport: number, dport: number, seg: Segment): void {
    const slot = this.dev.txSlot();
    let len: number;
    if (seg.flags & ACK) {
      len = writeTcpRst(slot, dst, src, dport, sport, seg.ack, 0, RST, this.ip6);
    } else {
      const segLen = seg.payloadLength + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
      len = writeTcpRst(slot, dst, src, dport, sport, 0, (seg.seq + segLen) >>> 0, RST | ACK, this.ip6);
    }
    this.commit(len);
    this.counters.rstSent++;
  }

  private commit(len: number): void {
    this.dev.commitTx(len);
    this.counters.packetsOut++;
    this.counters.bytesOut += len;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }

  private clock(): number {
    return (this.lastNow = performance.now());
  }

  private nextIsn(): number {
    if (this.isnNext >= this.isnPool.length) {
      randomFillSync(this.isnPool);
      this.isnNext = 0;
    }
    return this.isnPool[this.isnNext++];
  }

  /** Aborts every connection (RST to each client), e.g. on shutdown. */
  abortAll(): void {
    const all: TcpFlow[] = [];
    this.flows.forEach((f) => all.push(f));
    for (const f of all) if (!f.closed) this.run(f, RUN_ABORT, null, 0);
  }
}

/** ICMPv6 types of the link itself (RFC 4861 ND, RFC 3810 MLD): never for a proxied destination. */
function isLinkLocalIcmp6(type: number): boolean {
  return (type >= 130 && type <= 137) || type === 143;
}
