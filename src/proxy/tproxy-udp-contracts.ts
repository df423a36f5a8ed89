// What the TPROXY UDP inbound asks of the rules and reports to the data plane:
// the verdict on a new flow, the options, the counters, a flow's end.
import type { Endpoint } from '../tun/native-addon.js';
import type { UdpFlowEnd } from './tun/udp-session-types.js';
import type { UpstreamProxy } from './upstream-proxies.js';
import type { OwnerAnswer } from './owner-lookup.js';

export interface TproxyUdpVerdict {
  rule: string;
  action: string;
  /** what the flow was found to be (quic, udp, unknown) and its name, for its log line */
  proto?: string;
  sni?: string;
  /** a `proxy` rule's SOCKS5 upstream: the flow goes through its UDP association */
  upstream?: UpstreamProxy;
  /** who sent the flow, when the rules asked: for its log line */
  owner?: OwnerAnswer;
}

/**
 * A verdict that needs more of the flow: each next datagram goes to `next`; `next(null)` must decide.
 * Or one that waits for an answer (the flow's owner, `awaiting`): it comes through `later`, and a full hold drops meanwhile.
 */
export interface TproxyUdpPending {
  next(payload: Buffer | null): TproxyUdpVerdict | undefined;
  readonly awaiting?: boolean;
  later?(onVerdict: (v: TproxyUdpVerdict) => void): void;
}

export interface TproxyUdpOptions {
  idleMs: number;
  maxFlows: number;
  /** The rules' say on a new flow, from its first datagram; reject: its datagrams are dropped; with an upstream, through its UDP association. */
  admit?: (src: Endpoint, dst: Endpoint, payload: Buffer) => TproxyUdpVerdict | TproxyUdpPending;
  /** How long opening a SOCKS5 UDP association may take, ms (default 10000). */
  connectTimeoutMs?: number;
  onFlowEnd?: (e: TproxyUdpFlowEnd) => void;
  /** A transparent socket failed (its poll reported an error): it reads no more. */
  onError?: (err: Error) => void;
  /** Sends a reply from `from` to `to`: bytes sent, -1 dropped (buffer full); throws on failure. Default: the raw reply socket. Tests replace it. */
  sendReply?: (from: Endpoint, to: Endpoint, msg: Buffer) => number;
  /** Sends ICMP port unreachable from dst to the client, quoting a datagram of udpLength bytes (UDP header included). Default: the raw ICMP socket. */
  sendUnreachable?: (dst: Endpoint, client: Endpoint, udpLength: number) => number;
}

/** A flow's end, as the TUN path's UDP relay reports it (one connection-log line). */
export type TproxyUdpFlowEnd = UdpFlowEnd;

export interface TproxyUdpCounters {
  udpFlows: number;
  udpFlowsTotal: number;
  udpIn: number;
  udpOut: number;
  udpDropped: number;
  udpRejected: number;
  udpNotIntercepted: number;
  udpReplyErrors: number;
  udpUnreachable: number;
  udpSocksFlows: number;
  udpSocksDropped: number;
}
