// The UDP relay's contract with the gateway: its options, the rules' verdict
// on a new flow (now or after more of its datagrams), its counters and the
// record of a flow that ended (one log line).
import type { UdpFlowKey } from '../../stack/contracts.js';
import type { UpstreamProxy } from '../upstream-proxies.js';
import type { OwnerAnswer, OwnerLogFields } from '../owner-lookup.js';

export interface UdpSessionOptions {
  /** Source address for upstream sockets (the uplink's in route-all mode). */
  localAddress?: string;
  /** The same for IPv6 destinations. */
  localAddress6?: string;
  /** Idle time before a flow expires, ms; DNS flows (port 53) use dnsIdleMs. */
  idleMs: number;
  dnsIdleMs: number;
  maxFlows: number;
  /** Drop UDP to port 443 (QUIC) with a port unreachable, so browsers fall back to TCP. */
  blockQuic: boolean;
  /** Datagrams held per flow while its socket is being set up. */
  maxPending: number;
  /**
   * The real address behind a destination (a fake IP in per-host mode), or null
   * when it has none (stale: answered with port unreachable). Absent: relay as addressed.
   */
  resolveTarget?: (dst: number, dstText: string) => Promise<string | null> | string | null;
  /**
   * The rules' say on a new flow, from its first datagram's payload (a view,
   * valid during the call): a reject is answered with port unreachable (UDP's
   * RST), per datagram, without opening a socket. Or "not yet" (a QUIC hello
   * spanning datagrams): the flow's datagrams are then held, no socket opened,
   * and each next payload is handed to `next` until it decides; `next(null)`
   * must decide (the hold is full, or admitMs passed). A verdict waiting for
   * an answer instead (the flow's owner) comes through `later`; meanwhile a
   * full hold drops, and only admitMs cuts the wait. Absent: all admitted.
   */
  admit?: (flow: UdpFlowKey, payload: Buffer) => AdmitVerdict | AdmitPending;
  /** How long a flow may wait undecided, ms (checked by sweep). */
  admitMs: number;
  /** The same for a verdict waiting for the flow's owner (a /proc search can take longer than a QUIC hello's datagrams). */
  ownerWaitMs: number;
  /** How long opening a SOCKS5 UDP association may take, ms. */
  connectTimeoutMs: number;
}

export interface AdmitVerdict {
  rule: string;
  action: string;
  /** What the flow was found to be, and its name (a QUIC SNI), for its log line. */
  proto?: string;
  sni?: string;
  /** A SOCKS5 upstream that carries the flow (UDP ASSOCIATE) instead of a direct socket. */
  upstream?: UpstreamProxy;
  /** The name behind the destination (a fake IP's): sent to the upstream, which resolves it. */
  host?: string;
  /** Who sent the flow, when the rules asked: for its log line. */
  owner?: OwnerAnswer;
}

export interface AdmitPending {
  next(payload: Buffer | null): AdmitVerdict | undefined;
  /** Waiting for an answer, not for datagrams: a full hold drops rather than forcing the verdict. */
  readonly awaiting?: boolean;
  /** The verdict that comes by itself (the answer arrived). */
  later?(onVerdict: (v: AdmitVerdict) => void): void;
}

export const DEFAULT_UDP_OPTIONS: UdpSessionOptions = {
  idleMs: 60_000,
  dnsIdleMs: 10_000,
  maxFlows: 4096,
  blockQuic: false,
  maxPending: 16,
  admitMs: 1000,
  ownerWaitMs: 3000,
  connectTimeoutMs: 10_000,
};

export interface UdpCounters {
  udpFlows: number;
  udpFlowsTotal: number;
  udpIn: number;
  udpOut: number;
  udpDropped: number;
  udpUnreachable: number;
  /** Flows opened through a SOCKS5 UDP association; datagrams from its relay that were not a reply (bad header, a fragment, another source). */
  udpSocksFlows: number;
  udpSocksDropped: number;
}

export interface UdpFlowEnd extends Partial<OwnerLogFields> {
  src: string;
  dst: string;
  up: number;
  down: number;
  ms: number;
  end: string;
  rule: string;
  action: string;
  proto?: string;
  sni?: string;
  /** The upstream that carried the flow, when one did. */
  via?: string;
}
