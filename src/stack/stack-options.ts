// The stack's options with their defaults, and its counters.
import { DEFAULT_TCP_OPTIONS, type TcpOptions, type UdpHandler } from './contracts.js';
import type { ReassemblyOptions } from './ip-reassembly.js';

const IPV4_TCP_HEADERS = 40;
const IPV6_TCP_HEADERS = 60;

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
  /** IP fragment reassembly: datagrams in progress, bytes held, and the timeouts (ms) per family. */
  reassembly?: Partial<ReassemblyOptions>;
  /** Takes UDP datagrams (the relay above the stack); without it UDP is counted and dropped. */
  udp?: UdpHandler;
  /**
   * The clock for calls that come from outside input() and tick() (accept, a
   * stream's write, consumed, close), in the same unit and origin as their
   * `now`. Default: the last `now` input() or tick() was given, so a test's fake
   * clock drives everything; the data plane passes performance.now.
   */
  clock?: () => number;
  /**
   * Called when a connection files a timer earlier than nextDeadline() said,
   * also from outside input() (a stream's write): tick() is due by `at`. With
   * it and nextDeadline() the caller arms one timer instead of ticking.
   */
  onSooner?: (at: number) => void;
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
  /** Segments handed to an existing connection. */
  tcpSegments: number;
  rstSent: number;
  retransmits: number;
  /** Bytes buffered in TCP connections now, as counted against memoryBudget. */
  tcpBuffered: number;
  /** UDP datagrams handed to the layer above (the relay, the gateway's DNS). */
  udpDatagrams: number;
  /** Echo requests answered (ICMP and ICMPv6). */
  icmpEchoReplies: number;
  /** ICMP and ICMPv6 errors sent to clients. */
  icmpErrors: number;
  /** Neighbour discovery, router solicitations, MLD and other link-local chatter, ignored on purpose. */
  ndIgnored: number;
  /** IP fragments taken into reassembly, and the datagrams they completed. */
  fragmentsIn: number;
  datagramsReassembled: number;
  /** Packets over the device's MTU sent as fragments, and the fragments that made. */
  packetsFragmented: number;
  fragmentsOut: number;
  /** Segments over the MTU written for the kernel to split (TSO, a TUN with offloads). */
  segmentsOffloaded: number;
  /** UDP GSO packets read (USO: one send with UDP_SEGMENT), and the datagrams they were split into (counted in udpDatagrams too). */
  udpGsoPackets: number;
  udpGsoDatagrams: number;
  /** UDP GSO packets written (USO on write: same-size replies of one flow merged), and the datagrams they hold. */
  udpUsoPackets: number;
  udpUsoDatagrams: number;
}

export function newCounters(): StackCounters {
  return {
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
    tcpSegments: 0,
    rstSent: 0,
    retransmits: 0,
    tcpBuffered: 0,
    udpDatagrams: 0,
    icmpEchoReplies: 0,
    icmpErrors: 0,
    ndIgnored: 0,
    fragmentsIn: 0,
    datagramsReassembled: 0,
    packetsFragmented: 0,
    fragmentsOut: 0,
    segmentsOffloaded: 0,
    udpGsoPackets: 0,
    udpGsoDatagrams: 0,
    udpUsoPackets: 0,
    udpUsoDatagrams: 0,
  };
}

export function resolveOptions(opts: Partial<StackOptions>): StackOptions {
  return {
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
}

/**
 * The most payload in one TCP segment the device splits for us (TSO): IPv4's
 * 16-bit total length, less the largest IP and TCP headers (20 + 60 bytes).
 */
export const TSO_SEND_MAX = 65535 - 20 - 60;

/**
 * The TCP options for each family: the MSS follows the MTU, the window scale
 * the receive buffer; with TSO for a family, segments of up to TSO_SEND_MAX
 * (unless given a sendMax).
 */
export function tcpOptionsFor(mtu: number, given: Partial<TcpOptions>, tso = { v4: false, v6: false }): { v4: TcpOptions; v6: TcpOptions } {
  const tcp = { ...DEFAULT_TCP_OPTIONS, mss: mtu - IPV4_TCP_HEADERS, ...given };
  // The smallest window-scale shift that can advertise the whole receive buffer (RFC 7323 §2.3).
  if (given.wscale === undefined) {
    let shift = 0;
    while (shift < 14 && tcp.rcvBuf >> shift > 0xffff) shift++;
    tcp.wscale = shift;
  }
  const sendMax = (on: boolean) => (given.sendMax !== undefined ? given.sendMax : on ? TSO_SEND_MAX : 0);
  return { v4: { ...tcp, sendMax: sendMax(tso.v4) }, v6: { ...tcp, mss: Math.min(tcp.mss, mtu - IPV6_TCP_HEADERS), sendMax: sendMax(tso.v6) } };
}
