// Contracts between the layers of the stack. Everything here is a type: no
// behaviour, so every layer can be built and tested against it on its own.

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
  delayedAck: 40,
  timeWait: 2000,
  keepaliveIdle: 7_200_000, // 2 h, as Linux: a client that vanished is noticed, its memory freed
  keepaliveInterval: 75_000,
  keepaliveCount: 9,
};

/** Address family of a flow. */
export type Family = 4 | 6;

/** Endpoint as the proxy core sees it: strings are built once per connection, never per packet. */
export interface Endpoint {
  family: Family;
  address: string;
  port: number;
}
