// Every segment a connection sends is filled here into its one reused
// TcpOutSegment and handed to the sink: our ACK and window from the receiver,
// timestamps and SACK blocks as negotiated, the payload read later from the
// send buffer by the writer; the SYN and SYN-ACK with their options; a RST.
import { ACK, SYN, type TcpOptions, type TcpSink } from '../contracts.js';
import { seqAdd } from '../seq.js';
import type { Negotiated } from './negotiated.js';
import { TcpOutSegment } from './out-segment.js';
import type { SendBuffer } from './send-buffer.js';
import type { TcpReceiver } from './tcp-receiver.js';

export class TcpTransmitter {
  private readonly out: TcpOutSegment;

  constructor(
    private readonly sink: TcpSink,
    private readonly neg: Negotiated,
    private readonly rcv: TcpReceiver,
    private readonly opts: TcpOptions,
    buf: SendBuffer,
  ) {
    this.out = new TcpOutSegment(buf);
  }

  /** The timestamp value of the last segment sent (-1: none). */
  get lastTsVal(): number {
    return this.out.tsVal;
  }

  /** Any segment but SYN and RST: our ACK, window, timestamps and SACK blocks, and len bytes from seq. */
  transmit(flags: number, seq: number, len: number, now: number): void {
    const o = this.out;
    const rcv = this.rcv;
    o.flags = flags;
    o.seq = seq;
    o.ack = rcv.rcvNxt;
    o.window = rcv.advertise();
    o.tsVal = this.neg.tsOk ? this.neg.tsNow(now) : -1;
    o.tsEcr = this.neg.tsRecent;
    let sacks = rcv.fillSack(o.sack);
    // effMss leaves no room for SACK blocks: a full segment carries as many as fit (2 NOPs + kind/len, 8 each);
    // a segment over it (TSO) carries none, since the device copies the options into every piece
    if (len > 0 && sacks > 0) sacks = Math.max(0, Math.min(sacks, (this.neg.effMss - len - 4) >> 3));
    o.sackCount = sacks;
    // Any segment carries our ACK: the delayed one is no longer due.
    rcv.ackSent();
    o.payloadSeq = seq;
    o.payloadLength = len;
    o.pieceSize = this.neg.effMss;
    this.sink.sendSegment(o);
    o.payloadLength = 0;
  }

  /**
   * Our SYN (active open) or SYN-ACK with its options; in a SYN-ACK only what
   * the peer offered (RFC 7323 §1.3, RFC 2018). The window is never scaled in
   * a SYN (RFC 7323 §2.2); the right edge it advertises is the receiver's.
   */
  syn(withAck: boolean, iss: number, now: number): void {
    const o = this.out;
    const neg = this.neg;
    o.flags = withAck ? SYN | ACK : SYN;
    o.seq = iss;
    o.ack = withAck ? this.rcv.rcvNxt : 0;
    o.window = Math.min(this.opts.rcvBuf, 0xffff);
    o.mss = this.opts.mss;
    o.wscale = withAck ? (neg.wsOk ? neg.rcvShift : -1) : this.opts.wscale;
    o.sackOk = withAck ? neg.sackPerm : this.opts.sack;
    o.tsVal = (withAck ? neg.tsOk : this.opts.timestamps) ? neg.tsNow(now) : -1;
    o.tsEcr = withAck ? neg.tsRecent : 0;
    o.sackCount = 0;
    o.payloadLength = 0;
    this.sink.sendSegment(o);
    o.mss = -1;
    o.wscale = -1;
    o.sackOk = false;
    this.rcv.rcvAdvRight = seqAdd(this.rcv.rcvNxt, o.window);
  }

  /** A RST (or RST|ACK): no window, no options. */
  rst(seq: number, ack: number, flags: number): void {
    const o = this.out;
    o.flags = flags;
    o.seq = seq;
    o.ack = ack;
    o.window = 0;
    o.tsVal = -1;
    o.sackCount = 0;
    o.payloadLength = 0;
    this.sink.sendSegment(o);
  }
}
