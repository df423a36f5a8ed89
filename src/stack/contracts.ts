// Contracts of the stack: between its own layers (wire, TCP core, the stack)
// and with the layers above it (the pending connection the proxy side accepts,
// the UDP datagrams the relay above takes). Types only, no behaviour, so every
// layer can be built and tested against them on its own. Nothing here, and
// nothing in src/stack, imports from the layers above: they adapt to this.
import type { Duplex } from 'node:stream';
import type { Endpoint, Family } from '../net/endpoint.js';

export type { Endpoint, Family } from '../net/endpoint.js';

/** TCP flag bits as they sit in byte 13 of the header (RFC 9293 §3.1). */
export const FIN = 0x01;
export const SYN = 0x02;
export const RST = 0x04;
export const PSH = 0x08;
export const ACK = 0x10;
export const URG = 0x20;
export const ECE = 0x40;
export const CWR = 0x80;

/**
 * One received segment, filled by the demux into a single reused object.
 * Option fields are -1 / false when the option is absent.
 * `payload` is a view into the RX slot: valid only during the call, copy what you keep.
 */
export interface Segment {
  seq: number;
  ack: number;
  flags: number;
  /** The raw 16-bit window field, not yet scaled. */
  window: number;
  mss: number;
  wscale: number;
  sackOk: boolean;
  /** Timestamps option (RFC 7323); tsVal is -1 when absent. */
  tsVal: number;
  tsEcr: number;
  /** SACK blocks as [left0, right0, left1, right1, ...]; sackCount pairs are valid. */
  sack: Uint32Array;
  sackCount: number;
  payload: Buffer;
  payloadOffset: number;
  payloadLength: number;
}

/**
 * One segment to send, described by the connection into a reused object.
 * The writer copies the payload straight into the TX slot with `copyPayload`,
 * so the connection keeps its own send-buffer layout private.
 */
export interface OutSegment {
  flags: number;
  seq: number;
  ack: number;
  /** Already scaled down to the 16-bit field. */
  window: number;
  /** Options: -1 / false / 0 when not sent. MSS, wscale and sackOk only on SYN segments. */
  mss: number;
  wscale: number;
  sackOk: boolean;
  /** Send the timestamps option when tsVal >= 0. */
  tsVal: number;
  tsEcr: number;
  sack: Uint32Array;
  sackCount: number;
  payloadLength: number;
  /**
   * The most payload one packet on the wire carries (the effective MSS). A
   * longer payload (only with a sendMax above the MSS) is one segment for the
   * device to split into pieces of this size (TSO); absent or 0: never longer.
   */
  pieceSize?: number;
  /** Copies payloadLength bytes of payload into target at offset. */
  copyPayload(target: Buffer, offset: number): void;
}

export type CloseReason =
  | 'fin' // orderly close, both directions done
  | 'reset-by-peer' // client sent RST
  | 'aborted' // we sent RST (abort() or protocol error)
  | 'timeout' // retransmissions or keepalives exhausted
  | 'time-wait-expired';

/** What a TcpConnection emits. stack.ts implements it; tests record it. */
export interface TcpSink {
  sendSegment(seg: OutSegment): void;
  /** Handshake completed (ESTABLISHED). */
  onOpen(): void;
  /** In-order bytes. A view valid only during the call. */
  onData(data: Buffer, offset: number, length: number): void;
  /** The client sent FIN: no more data will arrive. */
  onPeerFin(): void;
  /** Room opened in the send buffer after write() had accepted less than offered. */
  onWritable(): void;
  /** The connection is gone; no further calls follow. */
  onClosed(reason: CloseReason): void;
}

export interface TcpOptions {
  /** Our MSS to announce and the cap on what we send: MTU minus 40 (IPv4). */
  mss: number;
  /** Receive buffer in bytes: the most we advertise. */
  rcvBuf: number;
  /** Send buffer in bytes: write() accepts up to this much unacknowledged data. */
  sndBuf: number;
  /** Our window-scale shift when the peer offers scaling (RFC 7323 §2). */
  wscale: number;
  timestamps: boolean;
  sack: boolean;
  /** RTO bounds in ms (RFC 6298 says min 1 s; we allow a lower floor like Linux's 200 ms). */
  rtoMin: number;
  rtoMax: number;
  rtoInitial: number;
  /** Give up after this many retransmissions of one segment. */
  maxRetries: number;
  /**
   * The most payload one segment we send may carry. 0: the MSS, one packet on
   * the wire each. Above it (the device segments: TSO), new data goes in
   * segments of whole MSS-sized pieces up to this; windows, congestion control
   * and retransmissions still count in MSS, and a resent hole is one MSS.
   */
  sendMax: number;
  /** Delayed ACK timeout in ms. */
  delayedAck: number;
  /** TIME-WAIT duration in ms (a short 2*MSL: the peer is on this host). */
  timeWait: number;
  /** Idle time before the first keepalive, interval, and count; 0 disables. */
  keepaliveIdle: number;
  keepaliveInterval: number;
  keepaliveCount: number;
}

export const DEFAULT_TCP_OPTIONS: TcpOptions = {
  mss: 1460,
  rcvBuf: 1 << 20,
  sndBuf: 1 << 20,
  wscale: 7,
  timestamps: true,
  sack: true,
  rtoMin: 200,
  rtoMax: 60_000,
  rtoInitial: 1000,
  maxRetries: 12,
  sendMax: 0,
  delayedAck: 40,
  timeWait: 2000,
  keepaliveIdle: 7_200_000, // 2 h, as Linux: a client that vanished is noticed, its memory freed
  keepaliveInterval: 75_000,
  keepaliveCount: 9,
};

// ---------------------------------------------------------------- upward

/**
 * A TCP connection a client opened into the TUN, handed to the layer above
 * before it is answered: the client waits for its SYN-ACK until accept(), so
 * the layer above can dial first and refuse in the client's own terms.
 * Exactly one of accept(), reject() or unreachable() answers it; reject()
 * also aborts an accepted connection (RST).
 */
export interface PendingConnection {
  /** Unique per stack, for logs. */
  readonly id: number;
  /** The client (the packet's source). */
  readonly src: Endpoint;
  /** The address and port the client dialled. */
  readonly dst: Endpoint;
  /** Completes the client's handshake; returns the byte stream (half-close aware). Throws when the client is gone. */
  accept(): Duplex;
  /** RST to the client (RST|ACK acknowledging its SYN while unanswered). */
  reject(): void;
  /**
   * While the client still waits for its SYN-ACK: ICMP host unreachable about its SYN, as a router says it
   * (net: network unreachable / no route, what the kernel path gives with no route at all); else as reject().
   */
  unreachable(net?: boolean): void;
  /** Bytes delivered from the client, and accepted for the client. */
  counters(): { up: number; down: number };
}

/** Called once per new connection, synchronously inside input(). */
export type ConnectHandler = (conn: PendingConnection) => void;

/**
 * A UDP flow's four-tuple as the stack's address numbers (IPv4 as uint32,
 * IPv6 as ids of the stack's address table: see AddressIds). A reused object:
 * copy the fields you keep.
 */
export interface UdpFlowKey {
  readonly clientIp: number;
  readonly serverIp: number;
  readonly clientPort: number;
  readonly serverPort: number;
}

/** Where the stack delivers UDP datagrams from clients (the relay above it). */
export interface UdpHandler {
  /**
   * One datagram, its checksum verified (and reassembled when it came in
   * fragments). key and payload are views valid only during the call.
   * False when nothing takes it: the stack counts it as udp_unsupported.
   */
  onDatagram(key: UdpFlowKey, payload: Buffer, offset: number, length: number, now: number): boolean;
}

/** What the stack offers the UDP layer above it: datagrams and ICMP errors to clients. */
export interface UdpPort {
  /** A datagram into the TUN from (src, sport) to (dst, dport); fragmented when over the MTU. */
  sendUdp(src: number, dst: number, sport: number, dport: number, payload: Buffer, offset: number, length: number): void;
  /** ICMP port unreachable about the flow's datagrams (upstream refused, or a rule). */
  sendPortUnreachable(flow: UdpFlowKey): void;
  /** ICMP host unreachable: the destination's network cannot be reached. */
  sendHostUnreachable(flow: UdpFlowKey): void;
  readonly addresses: AddressIds;
}

/** The stack's address numbers: text for logs, and references a flow holds while it lives. */
export interface AddressIds {
  /** IPv4 dotted quad or RFC 5952 IPv6 text: per flow, never per packet. */
  text(ip: number): string;
  family(ip: number): Family;
  /** Keep an IPv6 id valid beyond the call that handed it over (no-op for IPv4). */
  hold(ip: number): void;
  release(ip: number): void;
}
