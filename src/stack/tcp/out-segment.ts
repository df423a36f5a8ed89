// Segments to send, as the writer (wire/segment-writer.ts) reads them: the
// connection's one reused outgoing segment, whose payload is copied from the
// send buffer, and the stateless one a SYN cookie's SYN-ACK goes out in.
import { ACK, SYN, type OutSegment, type Segment, type TcpOptions } from '../contracts.js';
import { seqAdd } from '../seq.js';
import { tsOffsetFor } from './negotiated.js';
import type { SendBuffer } from './send-buffer.js';
import { encodeTsOptions } from './syn-cookie.js';

/** A segment sent without a connection (the cookie SYN-ACK): no payload, no SACK blocks. */
export class StatelessSegment implements OutSegment {
  flags = 0;
  seq = 0;
  ack = 0;
  window = 0;
  mss = -1;
  wscale = -1;
  sackOk = false;
  tsVal = -1;
  tsEcr = 0;
  readonly sack = new Uint32Array(8);
  sackCount = 0;
  payloadLength = 0;
  pieceSize = 0;
  copyPayload(_target: Buffer, _offset: number): void {}
}

/** A connection's outgoing segment: fields set per send, the payload read from the send buffer at payloadSeq. */
export class TcpOutSegment extends StatelessSegment {
  /** Sequence number of the payload's first byte. */
  payloadSeq = 0;

  constructor(private readonly source: SendBuffer) {
    super();
  }

  override copyPayload(target: Buffer, offset: number): void {
    this.source.copyOut(this.payloadSeq, this.payloadLength, target, offset);
  }
}

/**
 * The SYN-ACK answering a SYN with a cookie ISN, written into out; no
 * connection, nothing remembered. Window scale and SACK are offered only when
 * the SYN had timestamps: they come back in the ACK's tsEcr (see syn-cookie.ts).
 */
export function cookieSynAck(out: StatelessSegment, opts: TcpOptions, iss: number, syn: Segment, now: number): StatelessSegment {
  const tsOk = opts.timestamps && syn.tsVal >= 0;
  const wsOk = tsOk && syn.wscale >= 0 && opts.wscale >= 0;
  const sackOk = tsOk && opts.sack && syn.sackOk;
  out.flags = SYN | ACK;
  out.seq = iss >>> 0;
  out.ack = seqAdd(syn.seq, 1);
  out.window = Math.min(opts.rcvBuf, 0xffff); // never scaled in a SYN (RFC 7323 §2.2)
  out.mss = opts.mss;
  out.wscale = wsOk ? opts.wscale : -1;
  out.sackOk = sackOk;
  out.tsVal = tsOk ? encodeTsOptions((tsOffsetFor(iss >>> 0) + Math.floor(now)) >>> 0, wsOk ? syn.wscale : -1, sackOk) : -1;
  out.tsEcr = tsOk ? syn.tsVal : 0;
  return out;
}
