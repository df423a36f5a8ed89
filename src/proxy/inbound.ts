// What every inbound (the TUN stack today; an explicit proxy, REDIRECT and
// TPROXY later) hands the proxy core: a connection not yet answered, with its
// metadata. The core decides, dials, and only then accepts or rejects, so a
// TUN client sees its SYN-ACK only once the upstream connection stands.
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../net/endpoint.js';

export type InboundKind = 'tun' | 'http-proxy' | 'socks5' | 'redirect' | 'tproxy';

/**
 * Why a connection is refused, so each inbound answers in its own terms: the
 * TUN with a RST or an ICMP unreachable, an HTTP proxy with 502 or 403, SOCKS5
 * with its reply codes. `forbidden` is a rule's reject.
 */
export type RejectHow = 'rst' | 'unreachable' | 'forbidden';

export interface InboundConnection {
  readonly id: number;
  readonly inbound: InboundKind;
  readonly protocol: 'tcp';
  readonly src: Endpoint;
  /** The original destination the client addressed. */
  readonly dst: Endpoint;
  /**
   * Known before any byte flows when the destination is a fake IP (per-host
   * mode) or the client named it (explicit proxy: then dst.address is that name).
   */
  readonly hostname?: string;
  /** Completes the client's handshake; returns the byte stream (half-close aware). */
  accept(): Duplex;
  /**
   * netUnreachable (with 'unreachable'): the upstream's network has no route (ENETUNREACH: no uplink now),
   * which the TUN tells the client as the kernel would (ICMP net unreachable); other inbounds ignore it.
   */
  reject(how: RejectHow, netUnreachable?: boolean): void;
  /** Bytes from client to us, and from us to client, as counted by the inbound. */
  counters(): { up: number; down: number };
}
