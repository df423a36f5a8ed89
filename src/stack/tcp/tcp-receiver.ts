// The receive side of a connection (RFC 9293 §3.3.1 receive sequence space,
// §3.10.7.4): the acceptability test, in-order delivery to the app with
// out-of-order bytes held in reassembly, the window we advertise (never
// moving its right edge left, receiver SWS avoidance), SACK blocks, and when
// to ACK (at once on every second segment or a filled gap, else delayed).
// A connection made from a SYN cookie and not yet accepted holds what arrives.
import type { Segment, TcpOptions, TcpSink } from '../contracts.js';
import { seqAdd, seqDiff, seqGt, seqLe, seqLt } from '../seq.js';
import type { Negotiated } from './negotiated.js';
import { Reassembly, type InOrderSink } from './reassembly.js';

export interface ReceiverHost {
  /** Send an ACK now (it carries our window and SACK blocks). */
  sendAck(now: number): void;
}

export class TcpReceiver implements InOrderSink {
  irs = 0;
  rcvNxt = 0;
  /** Right edge we advertised: never moves left. */
  rcvAdvRight = 0;
  /** The window in our last segment (scaled), for SWS avoidance. */
  lastWndSent = 0;
  /** Delivered to the app, not yet consumed by it: shrinks the window. */
  unconsumed = 0;
  bytesReceived = 0;
  readonly ooo = new Reassembly();
  /** Delayed ACK deadline, and in-order segments not yet acknowledged. */
  ackAt = Infinity;
  private unackedSegs = 0;
  /** No app yet (a cookie connection before accept): bytes and a FIN are held. */
  holding = false;
  private held: Buffer[] = [];
  private heldFin = false;
  private closed = false;

  constructor(
    private readonly host: ReceiverHost,
    private readonly sink: TcpSink,
    private readonly neg: Negotiated,
    private readonly opts: TcpOptions,
  ) {}

  /** The peer's SYN at irs: data starts after it. */
  start(irs: number): void {
    this.irs = irs;
    this.rcvNxt = seqAdd(irs, 1);
  }

  /** A SYN cookie's ACK: data starts at its seq; the right edge is the one the cookie SYN-ACK advertised; no app yet. */
  cookieAck(ack: Segment): void {
    this.start(seqAdd(ack.seq, -1));
    this.lastWndSent = Math.min(this.opts.rcvBuf, 0xffff);
    this.rcvAdvRight = seqAdd(this.rcvNxt, this.lastWndSent);
    this.holding = true;
  }

  /** §3.10.7.4 first check: does the segment overlap the window we offered? */
  acceptable(seq: number, segLen: number): boolean {
    const wnd = Math.max(seqDiff(this.rcvAdvRight, this.rcvNxt), 0);
    if (segLen === 0) {
      if (wnd === 0) return seq === this.rcvNxt;
      return (seqLe(this.rcvNxt, seq) && seqLt(seq, seqAdd(this.rcvNxt, wnd))) || seq === this.rcvNxt;
    }
    if (wnd === 0) return false;
    const end = seqAdd(seq, segLen - 1);
    return (seqLe(this.rcvNxt, seq) && seqLt(seq, seqAdd(this.rcvNxt, wnd))) || (seqLe(this.rcvNxt, end) && seqLt(end, seqAdd(this.rcvNxt, wnd)));
  }

  /** §3.10.7.4 seventh: the segment's text, trimmed to what is new and within the window. */
  receiveData(seg: Segment, now: number): void {
    let seq = seg.seq;
    let off = seg.payloadOffset;
    let len = seg.payloadLength;
    const dup = seqDiff(this.rcvNxt, seq);
    if (dup > 0) {
      seq = this.rcvNxt;
      off += dup;
      len -= dup;
    }
    const room = seqDiff(this.rcvAdvRight, seq);
    if (len > room) len = Math.max(room, 0);
    if (len <= 0) return this.host.sendAck(now);
    if (seq === this.rcvNxt) {
      // RFC 5681 §4.2: ACK at once when a segment fills (part of) a gap.
      const filledGap = this.ooo.count > 0;
      this.deliver(seg.payload, off, len);
      this.ooo.drain(this);
      this.unackedSegs++;
      if (filledGap || this.unackedSegs >= 2) this.host.sendAck(now);
      else if (this.ackAt === Infinity) this.ackAt = now + this.opts.delayedAck;
    } else {
      if (this.ooo.bytes + len <= this.opts.rcvBuf) this.ooo.add(seq, seg.payload, off, len);
      this.host.sendAck(now); // immediate duplicate ACK with SACK blocks (RFC 5681 §4.2)
    }
  }

  /** In-order bytes: to the app, or held while there is none. */
  deliver(buf: Buffer, off: number, len: number): void {
    this.rcvNxt = seqAdd(this.rcvNxt, len);
    this.unconsumed += len;
    this.bytesReceived += len;
    if (this.holding) {
      // keep a copy; unconsumed keeps the window shut by as much
      this.held.push(Buffer.from(buf.subarray(off, off + len)));
      return;
    }
    this.sink.onData(buf, off, len);
  }

  /** The peer's FIN takes its sequence slot; the app hears of it (or it is held). */
  receiveFin(): void {
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
  }
  peerFin(): void {
    if (this.holding) this.heldFin = true;
    else this.sink.onPeerFin();
  }

  /** The app arrived: hand over the bytes and FIN that came first (already counted in rcvNxt and unconsumed). */
  release(): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const b of held) {
      if (this.closed) return;
      this.sink.onData(b, 0, b.length);
    }
    if (this.heldFin && !this.closed) {
      this.heldFin = false;
      this.sink.onPeerFin();
    }
  }

  /** The app took n bytes: true when the window grew enough to announce (receiver SWS avoidance, §3.8.6.2.2). */
  consumed(n: number): boolean {
    this.unconsumed = Math.max(0, this.unconsumed - n);
    return this.window() - this.lastWndSent >= Math.min(this.opts.rcvBuf >> 1, this.neg.effMss);
  }

  /** Free receive room. */
  window(): number {
    return Math.max(0, this.opts.rcvBuf - this.unconsumed - this.ooo.bytes);
  }

  /** The window field to send: free room, never moving the right edge left (§3.8.6.2.2), scaled. */
  advertise(): number {
    let wnd = this.window();
    const floor = seqDiff(this.rcvAdvRight, this.rcvNxt);
    if (wnd < floor) wnd = floor;
    const shift = this.neg.rcvShift;
    let field = wnd >>> shift;
    if (field > 0xffff) field = 0xffff;
    wnd = field << shift;
    if (seqGt(seqAdd(this.rcvNxt, wnd), this.rcvAdvRight)) this.rcvAdvRight = seqAdd(this.rcvNxt, wnd);
    this.lastWndSent = wnd;
    return field;
  }

  /** SACK blocks for the next segment (RFC 2018 §4); returns how many. */
  fillSack(out: Uint32Array): number {
    if (!this.neg.sackPerm || this.ooo.count === 0) return 0;
    return this.ooo.fillSack(out, this.neg.tsOk ? 3 : 4);
  }

  /** A segment carrying our ACK went out: the delayed one is no longer due. */
  ackSent(): void {
    this.ackAt = Infinity;
    this.unackedSegs = 0;
  }

  clear(): void {
    this.closed = true;
    this.ackAt = Infinity;
    this.ooo.clear();
    this.held = [];
    this.holding = false;
  }
}
