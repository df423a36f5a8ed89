// The pure TCP state machine (RFC 9293), our side being the server of a
// connection a client made into the TUN (or the client, for simulations).
// Segments and a clock in; segments and stream events out through a TcpSink.
// No I/O, no clock reads, no timers of its own: the owner calls onTimer() at
// nextDeadline().
import { ACK, FIN, PSH, RST, SYN, type OutSegment, type Segment, type TcpOptions, type TcpSink } from '../contracts.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from '../seq.js';
import { encodeTsOptions, type CookieDecoded } from './syn-cookie.js';

export type TcpState =
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT'
  | 'CLOSED';

const TS_OPT_LEN = 12;
/**
 * Out-of-order segments held at most (their bytes are bounded by rcvBuf too).
 * One late packet at 1500 bytes is followed by a window's worth of segments:
 * dropping those past a small count turned each reordering into a loss.
 */
const MAX_OOO_SEGMENTS = 2048;
/** SACKed ranges the sender tracks; more are merged away or dropped (recovery then falls back to the head). */
const MAX_SACKED_RANGES = 16;
/** Holes resent per arriving ACK in SACK recovery: ACK-clocked, with a little room to catch up. */
const SACK_RETX_PER_ACK = 2;
const MAX_DUP_THRESH = 64;

interface OooSeg {
  seq: number;
  data: Buffer;
}

/** Our timestamp clock's offset for a connection with ISN iss (a cookie SYN-ACK must use the same). */
function tsOffsetFor(iss: number): number {
  return (iss * 2654435761) >>> 0;
}

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
  readonly sackCount = 0;
  readonly payloadLength = 0;
  copyPayload(_target: Buffer, _offset: number): void {}
}

export class TcpConnection implements OutSegment {
  state: TcpState = 'CLOSED';
  /** Passive open not yet answered (no SYN-ACK sent). */
  pending = false;
  /**
   * Established from a SYN cookie but not yet accept()ed by the app: bytes and
   * a FIN that arrive are held (and shrink the window) until accept().
   */
  private unaccepted = false;
  private held: Buffer[] = [];
  private heldFin = false;

  // ---- send sequence space (RFC 9293 §3.3.1) ----
  private iss = 0;
  private sndUna = 0;
  private sndNxt = 0;
  /** Highest sequence sent so far (sndNxt can go back on retransmission). */
  private sndMax = 0;
  private sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  private sndShift = 0; // peer's window scale
  // ---- receive sequence space ----
  private irs = 0;
  private rcvNxt = 0;
  private rcvShift = 0; // ours
  private rcvAdvRight = 0; // right edge we advertised: never moves left
  private unconsumed = 0;
  private ooo: OooSeg[] = [];
  private oooBytes = 0;
  // ---- negotiated options ----
  private mssPeer = 536;
  private tsOk = false;
  private tsRecent = 0;
  private sackPerm = false;
  private wsOk = false;
  private tsOffset = 0;
  // ---- send buffer: chunks from sndUna on ----
  private chunks: Buffer[] = [];
  private chunkHead = 0; // offset of sndUna in chunks[0]
  private queued = 0; // bytes from sndUna to the end of the buffer
  private finQueued = false;
  private finSeq = -1; // sequence number of our FIN once sent
  private writeBlocked = false;
  // ---- congestion control (RFC 5681, RFC 6582) ----
  private cwnd = 0;
  private ssthresh = 0x7fffffff;
  private dupAcks = 0;
  private inRecovery = false;
  private recover = 0;
  /** Duplicate ACKs that start fast retransmit: 3, raised each time one proves spurious (reordering). */
  private dupThresh = 3;
  /** Limited transmit (RFC 3042): new segments allowed past cwnd on duplicate ACKs, so a small window still gets its three. */
  private limitedExtra = 0;
  /** The peer's SACK blocks within (sndUna, sndMax], merged, as pairs: the holes between them are what to resend. */
  private readonly sacked = new Uint32Array(2 * MAX_SACKED_RANGES);
  private sackedCount = 0;
  /** In SACK recovery: the next sequence number to consider resending. */
  private retxNext = 0;
  /** Eifel (RFC 3522): tsVal of this recovery's first retransmission, and the window to restore if it was needless. */
  private undoTs = -1;
  private undoCwnd = 0;
  private undoSsthresh = 0;
  // ---- RTO (RFC 6298) ----
  private srtt = -1;
  private rttvar = 0;
  private rto: number;
  private backoff = 0;
  private retries = 0;
  private rtoAt = Infinity;
  private timedSeq = -1; // Karn: segment timed when no timestamps
  private timedAt = 0;
  // ---- other timers ----
  private ackAt = Infinity;
  private unackedSegs = 0;
  private persistAt = Infinity;
  private persistBackoff = 0;
  private keepaliveAt = Infinity;
  private keepaliveSent = 0;
  private timeWaitAt = Infinity;
  private lastWndSent = 0;

  bytesSent = 0;
  bytesReceived = 0;
  retransmits = 0;

  // ---- OutSegment (this object is the one reused outgoing segment) ----
  flags = 0;
  seq = 0;
  ack = 0;
  window = 0;
  mss = -1;
  wscale = -1;
  tsVal = -1;
  tsEcr = 0;
  sack = new Uint32Array(8);
  sackCount = 0;
  payloadLength = 0;
  sackOk = false;
  private payloadSeq = 0;

  private constructor(
    private readonly sink: TcpSink,
    private readonly opts: TcpOptions,
    iss: number,
  ) {
    this.iss = iss >>> 0;
    this.sndUna = this.sndNxt = this.sndMax = this.iss;
    this.rto = opts.rtoInitial;
    this.tsOffset = tsOffsetFor(iss);
  }

  /** State read through a call, so the compiler does not narrow it across callbacks. */
  private isClosed(): boolean {
    return this.state === 'CLOSED';
  }

  get sendQueued(): number {
    return this.queued;
  }

  /** Bytes this connection holds for its two directions: send queue, out-of-order and undelivered-to-app data. */
  get bufferedBytes(): number {
    return this.queued + this.unconsumed + this.oooBytes;
  }

  /** Passive open: the client's SYN is recorded; nothing is sent until accept(). */
  static fromSyn(sink: TcpSink, opts: TcpOptions, iss: number, syn: Segment, now: number): TcpConnection {
    const c = new TcpConnection(sink, opts, iss);
    c.state = 'SYN-RECEIVED';
    c.pending = true;
    c.takePeerSynOptions(syn);
    c.irs = syn.seq;
    c.rcvNxt = seqAdd(syn.seq, 1);
    c.sndWnd = syn.window; // never scaled in a SYN (RFC 7323 §2.2)
    c.sndWl1 = syn.seq;
    c.armKeepalive(now);
    return c;
  }

  /**
   * The SYN-ACK answering a SYN with a cookie ISN, written into out; no
   * connection, nothing remembered. Window scale and SACK are offered only when
   * the SYN had timestamps: they come back in the ACK's tsEcr (see syn-cookie.ts).
   */
  static cookieSynAck(out: StatelessSegment, opts: TcpOptions, iss: number, syn: Segment, now: number): StatelessSegment {
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

  /**
   * The client's ACK of a cookie SYN-ACK (ack - 1 = iss, already checked):
   * the connection starts ESTABLISHED, with the options the cookie decoded, but
   * not yet accepted. Data or a FIN on the ACK itself is taken in (and held).
   * accept() then sends nothing and hands over what was held; abort() (a
   * reject) sends a RST. No onOpen: the owner creates it established.
   */
  static fromCookie(sink: TcpSink, opts: TcpOptions, iss: number, ack: Segment, d: CookieDecoded, now: number): TcpConnection {
    const c = new TcpConnection(sink, opts, iss);
    c.state = 'ESTABLISHED';
    c.unaccepted = true;
    c.mssPeer = d.mss;
    c.tsOk = opts.timestamps && d.tsOk;
    c.wsOk = c.tsOk && d.wscale >= 0 && opts.wscale >= 0;
    c.sndShift = c.wsOk ? d.wscale : 0;
    c.rcvShift = c.wsOk ? opts.wscale : 0;
    c.sackPerm = c.tsOk && opts.sack && d.sackOk;
    if (c.tsOk) c.tsRecent = ack.tsVal;
    c.irs = seqAdd(ack.seq, -1);
    c.rcvNxt = ack.seq;
    // The right edge the cookie SYN-ACK advertised.
    c.lastWndSent = Math.min(opts.rcvBuf, 0xffff);
    c.rcvAdvRight = seqAdd(c.rcvNxt, c.lastWndSent);
    c.sndUna = c.sndNxt = c.sndMax = seqAdd(iss, 1);
    c.sndWnd = ack.window << c.sndShift;
    c.sndWl1 = ack.seq;
    c.sndWl2 = ack.ack;
    c.cwnd = 10 * c.effMss; // RFC 6928
    c.armKeepalive(now);
    if (ack.payloadLength > 0 || ack.flags & FIN) c.receive(ack, now);
    return c;
  }

  /** Active open (used by simulations): sends the SYN. */
  static connect(sink: TcpSink, opts: TcpOptions, iss: number, now: number): TcpConnection {
    const c = new TcpConnection(sink, opts, iss);
    c.state = 'SYN-SENT';
    c.sendSyn(false, now);
    return c;
  }

  private takePeerSynOptions(syn: Segment): void {
    this.mssPeer = syn.mss > 0 ? syn.mss : 536;
    this.wsOk = syn.wscale >= 0 && this.opts.wscale >= 0;
    this.sndShift = this.wsOk ? syn.wscale : 0;
    this.rcvShift = this.wsOk ? this.opts.wscale : 0;
    this.tsOk = this.opts.timestamps && syn.tsVal >= 0;
    if (this.tsOk) this.tsRecent = syn.tsVal;
    this.sackPerm = this.opts.sack && syn.sackOk;
  }

  /** Largest payload per segment: MSS less the options every segment carries. */
  private get effMss(): number {
    return Math.max(1, Math.min(this.mssPeer, this.opts.mss) - (this.tsOk ? TS_OPT_LEN : 0));
  }

  accept(now: number): void {
    if (this.unaccepted) return this.releaseHeld();
    if (!this.pending) return;
    this.pending = false;
    this.cwnd = 10 * this.effMss; // RFC 6928
    this.sendSyn(true, now);
  }

  /** A cookie connection's app arrived: hand over the bytes and FIN that came first. */
  private releaseHeld(): void {
    this.unaccepted = false;
    const held = this.held;
    this.held = [];
    for (const b of held) {
      if (this.isClosed()) return;
      this.sink.onData(b, 0, b.length); // already counted in unconsumed and rcvNxt
    }
    if (this.heldFin && !this.isClosed()) {
      this.heldFin = false;
      this.sink.onPeerFin();
    }
  }

  private sendSyn(withAck: boolean, now: number): void {
    this.flags = withAck ? SYN | ACK : SYN;
    this.seq = this.iss;
    this.ack = withAck ? this.rcvNxt : 0;
    this.window = Math.min(this.opts.rcvBuf, 0xffff);
    this.mss = this.opts.mss;
    // In a SYN-ACK only offer what the peer offered (RFC 7323 §1.3, RFC 2018).
    this.wscale = withAck ? (this.wsOk ? this.rcvShift : -1) : this.opts.wscale;
    this.sackOk = withAck ? this.sackPerm : this.opts.sack;
    this.tsVal = (withAck ? this.tsOk : this.opts.timestamps) ? this.tsNow(now) : -1;
    this.tsEcr = withAck ? this.tsRecent : 0;
    this.sackCount = 0;
    this.payloadLength = 0;
    this.emit();
    this.mss = -1;
    this.wscale = -1;
    this.sackOk = false;
    this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.rcvAdvRight = seqAdd(this.rcvNxt, this.window);
    if (this.rtoAt === Infinity) this.rtoAt = now + this.rto;
  }

  private emit(): void {
    this.sink.sendSegment(this);
  }

  private tsNow(now: number): number {
    return (this.tsOffset + Math.floor(now)) >>> 0;
  }

  copyPayload(target: Buffer, offset: number): void {
    let skip = seqDiff(this.payloadSeq, this.sndUna) + this.chunkHead;
    let left = this.payloadLength;
    let i = 0;
    while (skip >= this.chunks[i].length) skip -= this.chunks[i++].length;
    while (left > 0) {
      const c = this.chunks[i++];
      const n = Math.min(left, c.length - skip);
      c.copy(target, offset, skip, skip + n);
      offset += n;
      left -= n;
      skip = 0;
    }
  }

  // ---------------------------------------------------------------- app side

  write(data: Buffer, now: number): number {
    if (this.finQueued || (this.state !== 'ESTABLISHED' && this.state !== 'CLOSE-WAIT' && this.state !== 'SYN-RECEIVED')) {
      return 0;
    }
    const room = this.opts.sndBuf - this.queued;
    if (room <= 0) {
      this.writeBlocked = true;
      return 0;
    }
    const n = Math.min(room, data.length);
    if (n > 0) {
      this.chunks.push(n === data.length ? data : data.subarray(0, n));
      this.queued += n;
    }
    if (n < data.length) this.writeBlocked = true;
    if (this.state !== 'SYN-RECEIVED') this.output(now);
    return n;
  }

  consumed(n: number, now: number): void {
    this.unconsumed = Math.max(0, this.unconsumed - n);
    if (!this.synchronized()) return;
    // Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): update only when it grew enough.
    const wnd = this.rcvWindow();
    if (wnd - this.lastWndSent >= Math.min(this.opts.rcvBuf >> 1, this.effMss)) this.sendAck(now);
  }

  close(now: number): void {
    switch (this.state) {
      case 'SYN-RECEIVED':
        if (this.pending) return this.abort(now);
        this.finQueued = true; // FIN once established (RFC 9293 §3.10.4)
        return;
      case 'SYN-SENT':
        return this.closed('aborted');
      case 'ESTABLISHED':
      case 'CLOSE-WAIT':
        if (this.finQueued) return;
        this.finQueued = true;
        this.output(now);
        return;
      default:
        return;
    }
  }

  /** silent: forget a connection not yet answered without a word, as a full SYN queue does (the client retries its SYN). */
  abort(now: number, silent = false): void {
    if (this.state === 'CLOSED') return;
    if (silent && this.pending) {
      this.closed('aborted');
      return;
    }
    if (this.pending) {
      // Refused before answering: RST|ACK acknowledging the SYN (RFC 9293 §3.10.7.1).
      this.sendRst(0, this.rcvNxt, RST | ACK, now);
    } else if (this.state !== 'SYN-SENT' && this.state !== 'TIME-WAIT') {
      this.sendRst(this.sndMax, this.rcvNxt, RST | ACK, now);
    }
    this.closed('aborted');
  }

  private sendRst(seq: number, ack: number, flags: number, now: number): void {
    this.flags = flags;
    this.seq = seq;
    this.ack = ack;
    this.window = 0;
    this.tsVal = -1;
    this.sackCount = 0;
    this.payloadLength = 0;
    this.emit();
    void now;
  }

  /** The connection's variables, sequence numbers relative to the ISNs: for diagnostics (SIGUSR2). */
  debugState(now: number): Record<string, number | string | boolean> {
    const rel = (x: number, base: number) => (x - base) >>> 0;
    const at = (x: number) => (x === Infinity ? -1 : Math.round(x - now));
    return {
      state: this.state,
      sndUna: rel(this.sndUna, this.iss), sndNxt: rel(this.sndNxt, this.iss), sndMax: rel(this.sndMax, this.iss),
      sndWnd: this.sndWnd, queued: this.queued, finQueued: this.finQueued, rcvNxt: rel(this.rcvNxt, this.irs),
      unconsumed: this.unconsumed, ooo: this.ooo.length, oooBytes: this.oooBytes,
      cwnd: this.cwnd, ssthresh: this.ssthresh, dupAcks: this.dupAcks, inRecovery: this.inRecovery,
      rto: this.rto, backoff: this.backoff, retries: this.retries, retransmits: this.retransmits,
      rtoIn: at(this.rtoAt), ackIn: at(this.ackAt), persistIn: at(this.persistAt), keepaliveIn: at(this.keepaliveAt), timeWaitIn: at(this.timeWaitAt),
      sackPerm: this.sackPerm, tsOk: this.tsOk, mssPeer: this.mssPeer, unaccepted: this.unaccepted,
    };
  }

  // ---------------------------------------------------------------- timers

  nextDeadline(): number {
    if (this.state === 'CLOSED') return Infinity;
    return Math.min(this.rtoAt, this.ackAt, this.persistAt, this.keepaliveAt, this.timeWaitAt);
  }

  onTimer(now: number): void {
    if (this.state === 'CLOSED') return;
    if (now >= this.timeWaitAt) return this.closed('time-wait-expired');
    if (now >= this.rtoAt) this.onRto(now);
    if (this.isClosed()) return;
    if (now >= this.persistAt) this.onPersist(now);
    if (now >= this.ackAt) this.sendAck(now);
    if (now >= this.keepaliveAt) this.onKeepalive(now);
  }

  /** RFC 6298 §5.4-5.7: retransmit the earliest unacknowledged segment, back off. */
  private onRto(now: number): void {
    if (this.pending) {
      this.rtoAt = Infinity;
      return;
    }
    if (++this.retries > this.opts.maxRetries) {
      if (this.state !== 'SYN-SENT') this.sendRst(this.sndNxt, this.rcvNxt, RST | ACK, now);
      return this.closed('timeout');
    }
    this.backoff++;
    this.rto = Math.min(this.rto * 2, this.opts.rtoMax);
    this.timedSeq = -1;
    if (this.state === 'SYN-SENT' || (this.state === 'SYN-RECEIVED' && seqLe(this.sndUna, this.iss))) {
      this.retransmits++;
      this.rtoAt = now + this.rto;
      this.sendSyn(this.state === 'SYN-RECEIVED', now);
      this.rtoAt = now + this.rto;
      return;
    }
    // Loss: collapse the window and go back to sndUna (RFC 5681 §3.1 eq. 4).
    const flight = seqDiff(this.sndMax, this.sndUna);
    this.ssthresh = Math.max(flight >> 1, 2 * this.effMss);
    this.cwnd = this.effMss;
    this.inRecovery = false;
    this.dupAcks = 0;
    this.limitedExtra = 0;
    this.sackedCount = 0; // RFC 6675 §5.1: after a timeout the scoreboard may be stale
    this.undoTs = -1;
    this.sndNxt = this.sndUna;
    this.rtoAt = Infinity;
    this.output(now, true);
    if (this.rtoAt === Infinity && this.inFlight() > 0) this.rtoAt = now + this.rto;
  }

  /** Zero-window probe (RFC 9293 §3.8.6.1): one byte past the window elicits an ACK. */
  private onPersist(now: number): void {
    this.persistAt = Infinity;
    if (this.sndWnd !== 0 || this.unsent() === 0) return this.output(now);
    // seq = sndUna - 1 carries no new data, so it costs no sequence space; the
    // peer answers an old segment with an ACK that shows its window (as Linux does).
    this.fillHeader(ACK, seqAdd(this.sndUna, -1), now);
    this.payloadLength = 0;
    this.emit();
    this.persistBackoff++;
    this.persistAt = now + Math.min(this.rto * 2 ** this.persistBackoff, this.opts.rtoMax);
  }

  private onKeepalive(now: number): void {
    if (this.keepaliveSent >= this.opts.keepaliveCount) {
      this.sendRst(this.sndNxt, this.rcvNxt, RST | ACK, now);
      return this.closed('timeout');
    }
    this.keepaliveSent++;
    // seq = sndNxt - 1 with no data: the peer must answer with an ACK (RFC 9293 §3.8.4).
    this.fillHeader(ACK, seqAdd(this.sndNxt, -1), now);
    this.payloadLength = 0;
    this.emit();
    this.keepaliveAt = now + this.opts.keepaliveInterval;
  }

  private armKeepalive(now: number): void {
    this.keepaliveSent = 0;
    this.keepaliveAt = this.opts.keepaliveIdle > 0 && this.synchronizedOrPending() ? now + this.opts.keepaliveIdle : Infinity;
  }

  // ---------------------------------------------------------------- receive

  /** RFC 9293 §3.10.7: one arriving segment. */
  receive(seg: Segment, now: number): void {
    switch (this.state) {
      case 'CLOSED':
        return;
      case 'SYN-SENT':
        return this.receiveSynSent(seg, now);
      default:
        break;
    }
    if (this.pending) {
      // Waiting for our upstream: a repeated SYN changes nothing; a RST ends it.
      if (seg.flags & RST && seg.seq === this.rcvNxt) this.closed('reset-by-peer');
      return;
    }
    if (this.opts.keepaliveIdle > 0) this.armKeepalive(now);
    if (this.state === 'SYN-RECEIVED' && seg.flags & SYN && !(seg.flags & ACK) && seg.seq === this.irs) {
      return this.sendSyn(true, now); // our SYN-ACK was lost
    }
    const segLen = seg.payloadLength + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);

    // 1. Acceptability (§3.10.7.4).
    if (!this.acceptable(seg.seq, segLen)) {
      if (!(seg.flags & RST)) this.sendAck(now);
      // TIME-WAIT: a retransmitted FIN means our ACK was lost; restart the 2 MSL wait (§3.10.7.4).
      if (this.state === 'TIME-WAIT' && seg.flags & FIN) this.timeWaitAt = now + this.opts.timeWait;
      return;
    }
    // 2. RST (RFC 5961 §3.2): exact → reset; in window → challenge ACK.
    if (seg.flags & RST) {
      if (seg.seq === this.rcvNxt) {
        if (this.state === 'TIME-WAIT') return this.closed('time-wait-expired');
        return this.closed('reset-by-peer');
      }
      return this.sendAck(now);
    }
    // 4. SYN in a synchronized state (RFC 5961 §4): challenge ACK.
    if (seg.flags & SYN) {
      if (this.state === 'SYN-RECEIVED' && seg.seq === this.irs) return; // our SYN-ACK crossed a retransmitted SYN
      return this.sendAck(now);
    }
    // 5. ACK.
    if (!(seg.flags & ACK)) return;
    if (this.tsOk && seg.tsVal >= 0 && seqLe(seg.seq, this.rcvNxt)) this.tsRecent = seg.tsVal; // RFC 7323 §4.3
    if (!this.processAck(seg, now)) return;
    if (this.isClosed()) return;

    // 7. Data.
    if (seg.payloadLength > 0) {
      if (this.state === 'ESTABLISHED' || this.state === 'FIN-WAIT-1' || this.state === 'FIN-WAIT-2') {
        this.receiveData(seg, now);
      } else if (seqGe(seg.seq, this.rcvNxt)) {
        // data after the peer's FIN: nothing to deliver it to
        this.sendAck(now);
      }
    }
    // 8. FIN, once everything before it has arrived.
    if (seg.flags & FIN) {
      const finSeq = seqAdd(seg.seq, seg.payloadLength);
      if (finSeq === this.rcvNxt) this.receiveFin(now);
      else if (seqLt(finSeq, this.rcvNxt)) {
        // A retransmitted FIN: our ACK was lost. In TIME-WAIT restart the 2 MSL wait (§3.10.7.4).
        this.sendAck(now);
        if (this.state === 'TIME-WAIT') this.timeWaitAt = now + this.opts.timeWait;
      }
    }
  }

  private receiveSynSent(seg: Segment, now: number): void {
    const f = seg.flags;
    if (f & ACK && (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt))) {
      if (!(f & RST)) this.sendRst(seg.ack, 0, RST, now);
      return;
    }
    if (f & RST) {
      if (f & ACK) this.closed('reset-by-peer');
      return;
    }
    if (!(f & SYN)) return;
    this.takePeerSynOptions(seg);
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.cwnd = 10 * this.effMss;
    if (f & ACK) {
      this.sndUna = seg.ack;
      this.sndWnd = seg.window;
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.rtoAt = Infinity;
      this.retries = 0;
      this.state = 'ESTABLISHED';
      this.sendAck(now);
      this.sink.onOpen();
      this.output(now);
    } else {
      // Simultaneous open (§3.5): answer with SYN-ACK.
      this.state = 'SYN-RECEIVED';
      this.sendSyn(true, now);
    }
  }

  private acceptable(seq: number, segLen: number): boolean {
    const wnd = Math.max(seqDiff(this.rcvAdvRight, this.rcvNxt), 0);
    if (segLen === 0) {
      if (wnd === 0) return seq === this.rcvNxt;
      return seqLe(this.rcvNxt, seq) && seqLt(seq, seqAdd(this.rcvNxt, wnd)) || seq === this.rcvNxt;
    }
    if (wnd === 0) return false;
    const end = seqAdd(seq, segLen - 1);
    return (
      (seqLe(this.rcvNxt, seq) && seqLt(seq, seqAdd(this.rcvNxt, wnd))) ||
      (seqLe(this.rcvNxt, end) && seqLt(end, seqAdd(this.rcvNxt, wnd)))
    );
  }

  /** §3.10.7.4 fifth check. Returns false when the segment must be dropped. */
  private processAck(seg: Segment, now: number): boolean {
    const ack = seg.ack;
    if (this.state === 'SYN-RECEIVED') {
      if (seqLe(ack, this.sndUna) || seqGt(ack, this.sndMax)) {
        this.sendRst(ack, 0, RST, now);
        return false;
      }
      // The ACK of our SYN takes the SYN's sequence slot, not a data byte: data
      // queued before the handshake completed starts at iss + 1 (RFC 9293 §3.4).
      this.synAcked(seg, now);
      this.state = 'ESTABLISHED';
      this.sndWnd = seg.window << this.sndShift;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      this.sink.onOpen();
      if (this.state !== 'ESTABLISHED') return false;
    }
    if (seqGt(ack, this.sndMax)) {
      // RFC 5961 §5: ACK of data never sent.
      this.sendAck(now);
      return false;
    }
    const wnd = seg.window << this.sndShift;
    if (seg.sackCount > 0 && this.sackPerm) this.noteSack(seg);
    if (seqGt(ack, this.sndUna)) {
      this.ackAdvanced(ack, seg, now);
    } else if (ack === this.sndUna && seg.payloadLength === 0 && !(seg.flags & FIN) && wnd === this.sndWnd && this.inFlight() > 0) {
      this.onDupAck(now);
    }
    // Window update (§3.10.7.4): only from newer segments.
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      const opened = wnd > this.sndWnd;
      this.sndWnd = wnd;
      this.sndWl1 = seg.seq;
      this.sndWl2 = ack;
      if (wnd > 0) {
        this.persistAt = Infinity;
        this.persistBackoff = 0;
      }
      if (opened) this.output(now);
    }
    // FIN acknowledged?
    if (this.finSeq >= 0 && seqGt(ack, this.finSeq)) {
      switch (this.state) {
        case 'FIN-WAIT-1':
          this.state = 'FIN-WAIT-2';
          break;
        case 'CLOSING':
          this.enterTimeWait(now);
          break;
        case 'LAST-ACK':
          this.closed('fin');
          return false;
      }
    }
    this.output(now);
    return true;
  }

  /** Our SYN is acknowledged: its slot leaves the send space, its timer stops (RTT sampled unless it was resent). */
  private synAcked(seg: Segment, now: number): void {
    if (this.tsOk && seg.tsEcr !== 0 && this.backoff === 0) this.rttSample(this.tsNow(now) - seg.tsEcr);
    this.sndUna = seqAdd(this.iss, 1);
    if (seqLt(this.sndNxt, this.sndUna)) this.sndNxt = this.sndUna;
    this.backoff = 0;
    this.retries = 0;
    this.rtoAt = Infinity;
  }

  private ackAdvanced(ack: number, seg: Segment, now: number): void {
    let acked = seqDiff(ack, this.sndUna);
    // RTT sample (RFC 6298 §3 with Karn; RFC 7323 §4 with timestamps).
    if (this.tsOk && seg.tsEcr !== 0 && this.backoff === 0) this.rttSample(this.tsNow(now) - seg.tsEcr);
    else if (this.timedSeq >= 0 && seqGt(ack, this.timedSeq)) this.rttSample(now - this.timedAt);
    if (this.timedSeq >= 0 && seqGt(ack, this.timedSeq)) this.timedSeq = -1;
    this.backoff = 0;
    this.retries = 0;
    // Remove acknowledged bytes (the FIN occupies a sequence number, not a byte).
    const finAcked = this.finSeq >= 0 && seqGt(ack, this.finSeq);
    if (finAcked) acked -= 1;
    const dataAcked = Math.min(acked, this.queued);
    this.dropAcked(dataAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.trimSacked();
    // Congestion control.
    if (this.inRecovery && this.spuriousRetransmit(seg)) {
      // The ACK echoes the original's timestamp, not the retransmission's: it was reordering, not loss.
      this.inRecovery = false;
      this.cwnd = Math.max(this.cwnd, this.undoCwnd);
      this.ssthresh = Math.max(this.ssthresh, this.undoSsthresh);
      this.dupThresh = Math.min(this.dupThresh * 2, MAX_DUP_THRESH);
    } else if (this.inRecovery) {
      if (seqGe(ack, this.recover)) {
        this.inRecovery = false;
        this.cwnd = this.ssthresh; // RFC 6582 §3.2 step 3 (full ACK)
      } else {
        // Partial ACK: resend the holes the SACK blocks show, else the next one (RFC 6582 §3.2 step 4); deflate.
        if (!this.retransmitHoles(now) && !seqGt(this.retxNext, this.sndUna)) this.retransmitHead(now);
        this.cwnd = Math.max(this.cwnd - dataAcked + this.effMss, this.effMss);
      }
    } else if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(dataAcked, this.effMss); // slow start
    } else {
      this.cwnd += Math.max(1, Math.floor((this.effMss * this.effMss) / this.cwnd)); // congestion avoidance
    }
    this.dupAcks = 0;
    this.limitedExtra = 0;
    this.rtoAt = this.inFlight() > 0 ? now + this.rto : Infinity;
    if (this.writeBlocked && this.queued < this.opts.sndBuf) {
      this.writeBlocked = false;
      this.sink.onWritable();
    }
  }

  private onDupAck(now: number): void {
    if (this.inRecovery) {
      this.cwnd += this.effMss; // inflate (RFC 5681 §3.2 step 4)
      this.retransmitHoles(now);
      this.output(now);
      return;
    }
    this.dupAcks++;
    // Early retransmit (RFC 5827): with nothing new to send and few segments out, fewer duplicates can come.
    const segsOut = Math.ceil(this.inFlight() / this.effMss);
    const unsent = this.queued - this.inFlight() > 0;
    // (not once reordering has been seen: then duplicates mean little)
    const thresh = unsent || this.dupThresh > 3 ? this.dupThresh : Math.max(1, Math.min(this.dupThresh, segsOut - 1));
    if (this.dupAcks < thresh) {
      // one new segment per duplicate: each says one segment left the network
      this.limitedExtra = this.dupAcks * this.effMss;
      this.output(now);
    } else {
      this.limitedExtra = 0;
      // Fast retransmit (RFC 5681 §3.2).
      this.undoCwnd = this.cwnd;
      this.undoSsthresh = this.ssthresh;
      this.ssthresh = Math.max(this.inFlight() >> 1, 2 * this.effMss);
      this.recover = this.sndMax;
      this.inRecovery = true;
      this.retxNext = this.sndUna;
      this.retransmitHead(now);
      this.undoTs = this.tsOk ? this.tsVal : -1;
      this.cwnd = this.ssthresh + 3 * this.effMss;
    }
  }

  /** Eifel detection: the first ACK past the retransmitted head echoes a timestamp older than the retransmission. */
  private spuriousRetransmit(seg: Segment): boolean {
    if (this.undoTs < 0 || seg.tsEcr === 0) return false;
    const spurious = ((seg.tsEcr - this.undoTs) | 0) < 0;
    this.undoTs = -1;
    return spurious;
  }

  /** Records the peer's SACK blocks (RFC 2018), ignoring any outside (sndUna, sndMax]. */
  private noteSack(seg: Segment): void {
    for (let i = 0; i < seg.sackCount; i++) {
      const l = seg.sack[2 * i];
      const r = seg.sack[2 * i + 1];
      if (!seqLt(l, r) || !seqLt(this.sndUna, l) || seqGt(r, this.sndMax)) continue;
      this.addSacked(l, r);
    }
  }

  private addSacked(l: number, r: number): void {
    const a = this.sacked;
    let n = this.sackedCount;
    // merge every range that overlaps or touches [l, r), then insert in order
    let i = 0;
    while (i < n) {
      if (seqLt(a[2 * i + 1], l) || seqGt(a[2 * i], r)) {
        i++;
        continue;
      }
      if (seqLt(a[2 * i], l)) l = a[2 * i];
      if (seqGt(a[2 * i + 1], r)) r = a[2 * i + 1];
      a.copyWithin(2 * i, 2 * i + 2, 2 * n);
      n--;
    }
    if (n === MAX_SACKED_RANGES) n--; // full: the highest range goes
    let k = n;
    while (k > 0 && seqGt(a[2 * (k - 1)], l)) k--;
    a.copyWithin(2 * k + 2, 2 * k, 2 * n);
    a[2 * k] = l;
    a[2 * k + 1] = r;
    this.sackedCount = n + 1;
  }

  /** Forgets SACKed ranges the cumulative ACK has passed. */
  private trimSacked(): void {
    const a = this.sacked;
    let drop = 0;
    while (drop < this.sackedCount && seqLe(a[2 * drop + 1], this.sndUna)) drop++;
    if (drop > 0) {
      a.copyWithin(0, 2 * drop, 2 * this.sackedCount);
      this.sackedCount -= drop;
    }
    if (this.sackedCount > 0 && seqLt(a[0], this.sndUna)) a[0] = this.sndUna;
  }

  /**
   * SACK recovery (after RFC 6675's NextSeg, simplified): resend the unSACKed
   * holes below the highest SACKed byte, each once per recovery, a few per
   * ACK. False when the blocks show nothing to resend.
   */
  private retransmitHoles(now: number): boolean {
    if (!this.sackPerm || this.sackedCount === 0) return false;
    if (seqLt(this.retxNext, this.sndUna)) this.retxNext = this.sndUna;
    const high = this.sacked[2 * this.sackedCount - 1];
    let sent = 0;
    let i = 0;
    while (sent < SACK_RETX_PER_ACK && seqLt(this.retxNext, high)) {
      // skip the ranges the peer has
      while (i < this.sackedCount && seqLe(this.sacked[2 * i + 1], this.retxNext)) i++;
      if (i < this.sackedCount && seqLe(this.sacked[2 * i], this.retxNext)) {
        this.retxNext = this.sacked[2 * i + 1];
        continue;
      }
      const holeEnd = i < this.sackedCount ? this.sacked[2 * i] : high;
      const len = Math.min(this.effMss, seqDiff(holeEnd, this.retxNext), this.queued - seqDiff(this.retxNext, this.sndUna));
      if (len <= 0) break;
      this.retransmits++;
      this.timedSeq = -1;
      this.sendData(this.retxNext, len, now);
      this.retxNext = seqAdd(this.retxNext, len);
      sent++;
    }
    return sent > 0;
  }

  private retransmitHead(now: number): void {
    const len = Math.min(this.effMss, seqDiff(this.sndMax, this.sndUna), this.queued);
    if (len > 0) {
      this.retransmits++;
      this.timedSeq = -1;
      this.sendData(this.sndUna, len, now);
      if (seqLt(this.retxNext, seqAdd(this.sndUna, len))) this.retxNext = seqAdd(this.sndUna, len);
    } else if (this.finSeq >= 0 && this.sndUna === this.finSeq) {
      this.retransmits++;
      this.sendFin(now);
    }
  }

  private rttSample(r: number): void {
    if (r < 0) return;
    if (this.srtt < 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = Math.min(Math.max(this.srtt + Math.max(1, 4 * this.rttvar), this.opts.rtoMin), this.opts.rtoMax);
  }

  private dropAcked(n: number): void {
    this.queued -= n;
    n += this.chunkHead;
    let i = 0;
    while (i < this.chunks.length && n >= this.chunks[i].length) n -= this.chunks[i++].length;
    if (i > 0) this.chunks.splice(0, i);
    this.chunkHead = n;
  }

  private receiveData(seg: Segment, now: number): void {
    let seq = seg.seq;
    let off = seg.payloadOffset;
    let len = seg.payloadLength;
    // Trim what we already have (left edge) and what exceeds the window (right edge).
    const dup = seqDiff(this.rcvNxt, seq);
    if (dup > 0) {
      seq = this.rcvNxt;
      off += dup;
      len -= dup;
    }
    const room = seqDiff(this.rcvAdvRight, seq);
    if (len > room) len = Math.max(room, 0);
    if (len <= 0) return this.sendAck(now);
    if (seq === this.rcvNxt) {
      // RFC 5681 §4.2: ACK at once when a segment fills (part of) a gap.
      const filledGap = this.ooo.length > 0;
      this.deliver(seg.payload, off, len);
      this.drainOoo();
      this.unackedSegs++;
      if (filledGap || this.unackedSegs >= 2) {
        this.sendAck(now);
      } else if (this.ackAt === Infinity) {
        this.ackAt = now + this.opts.delayedAck;
      }
    } else {
      this.storeOoo(seq, seg.payload, off, len);
      this.sendAck(now); // immediate duplicate ACK with SACK blocks (RFC 5681 §4.2)
    }
  }

  private deliver(buf: Buffer, off: number, len: number): void {
    this.rcvNxt = seqAdd(this.rcvNxt, len);
    this.unconsumed += len;
    this.bytesReceived += len;
    if (this.unaccepted) {
      // No app yet: keep a copy; unconsumed keeps the window shut by as much.
      this.held.push(Buffer.from(buf.subarray(off, off + len)));
      return;
    }
    this.sink.onData(buf, off, len);
  }

  private storeOoo(seq: number, buf: Buffer, off: number, len: number): void {
    if (this.ooo.length >= MAX_OOO_SEGMENTS || this.oooBytes + len > this.opts.rcvBuf) return;
    const copy = Buffer.allocUnsafe(len);
    buf.copy(copy, 0, off, off + len);
    // Keep the list sorted by seq; overlaps are trimmed at delivery.
    let i = this.ooo.length;
    while (i > 0 && seqGt(this.ooo[i - 1].seq, seq)) i--;
    if (i > 0 && this.ooo[i - 1].seq === seq && this.ooo[i - 1].data.length >= len) return;
    this.ooo.splice(i, 0, { seq, data: copy });
    this.oooBytes += len;
    this.lastOooSeq = seq;
  }
  private lastOooSeq = 0;

  private drainOoo(): void {
    let i = 0;
    for (; i < this.ooo.length; i++) {
      const s = this.ooo[i];
      const end = seqAdd(s.seq, s.data.length);
      if (seqGt(s.seq, this.rcvNxt)) break;
      this.oooBytes -= s.data.length;
      if (seqGt(end, this.rcvNxt)) {
        const skip = seqDiff(this.rcvNxt, s.seq);
        this.deliver(s.data, skip, s.data.length - skip);
      }
    }
    if (i > 0) this.ooo.splice(0, i); // once, not a shift per segment: a long run drains in O(n)
  }

  /** SACK blocks (RFC 2018 §4): the block with the latest arrival first, then the others. */
  private fillSack(): void {
    this.sackCount = 0;
    if (!this.sackPerm || this.ooo.length === 0) return;
    const blocks: number[] = [];
    let l = this.ooo[0].seq;
    let r = seqAdd(l, this.ooo[0].data.length);
    for (let i = 1; i < this.ooo.length; i++) {
      const s = this.ooo[i];
      if (seqLe(s.seq, r)) {
        const e = seqAdd(s.seq, s.data.length);
        if (seqGt(e, r)) r = e;
      } else {
        blocks.push(l, r);
        l = s.seq;
        r = seqAdd(s.seq, s.data.length);
      }
    }
    blocks.push(l, r);
    let k = 0;
    for (let i = 0; i < blocks.length; i += 2) {
      if (seqLe(blocks[i], this.lastOooSeq) && seqLt(this.lastOooSeq, blocks[i + 1])) {
        this.sack[0] = blocks[i];
        this.sack[1] = blocks[i + 1];
        k = 1;
        blocks.splice(i, 2);
        break;
      }
    }
    for (let i = 0; i < blocks.length && k < (this.tsOk ? 3 : 4); i += 2, k++) {
      this.sack[2 * k] = blocks[i];
      this.sack[2 * k + 1] = blocks[i + 1];
    }
    this.sackCount = k;
  }

  private receiveFin(now: number): void {
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.sendAck(now);
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.state = 'CLOSE-WAIT';
        if (this.unaccepted) this.heldFin = true;
        else this.sink.onPeerFin();
        break;
      case 'FIN-WAIT-1':
        // Our FIN not yet acknowledged: simultaneous close.
        this.state = 'CLOSING';
        this.sink.onPeerFin();
        break;
      case 'FIN-WAIT-2':
        this.sink.onPeerFin();
        if (this.state === 'FIN-WAIT-2') this.enterTimeWait(now);
        break;
      default:
        break;
    }
  }

  private enterTimeWait(now: number): void {
    this.state = 'TIME-WAIT';
    this.rtoAt = Infinity;
    this.persistAt = Infinity;
    this.keepaliveAt = Infinity;
    this.ackAt = Infinity;
    this.timeWaitAt = now + this.opts.timeWait;
  }

  // ---------------------------------------------------------------- send

  private synchronized(): boolean {
    return this.state !== 'CLOSED' && this.state !== 'SYN-SENT' && !(this.state === 'SYN-RECEIVED');
  }
  private synchronizedOrPending(): boolean {
    return this.state !== 'CLOSED' && this.state !== 'SYN-SENT';
  }

  private inFlight(): number {
    return seqDiff(this.sndNxt, this.sndUna);
  }

  private unsent(): number {
    return this.queued - Math.min(this.inFlight(), this.queued);
  }

  private rcvWindow(): number {
    return Math.max(0, this.opts.rcvBuf - this.unconsumed - this.oooBytes);
  }

  /** Sends what the windows allow, then the FIN when everything before it went. */
  private output(now: number, retransmitting = false): void {
    if (this.state !== 'ESTABLISHED' && this.state !== 'CLOSE-WAIT' && this.state !== 'FIN-WAIT-1' && this.state !== 'CLOSING' && this.state !== 'LAST-ACK') {
      return;
    }
    const mss = this.effMss;
    for (;;) {
      const offset = this.inFlight();
      const unsent = this.queued - offset;
      if (unsent <= 0) break;
      const wnd = Math.min(this.sndWnd, this.cwnd + this.limitedExtra);
      const usable = wnd - offset;
      if (usable <= 0) {
        if (this.sndWnd === 0 && offset === 0 && this.persistAt === Infinity) this.persistAt = now + this.rto;
        break;
      }
      const len = Math.min(mss, unsent, usable);
      // Avoid a silly small segment when more is queued and the window will open (sender SWS, RFC 9293 §3.8.6.2.1).
      if (len < mss && len < unsent && offset > 0) break;
      const seq = this.sndNxt;
      if (seqLt(seq, this.sndMax)) this.retransmits++;
      this.sendData(seq, len, now);
      this.sndNxt = seqAdd(seq, len);
      if (seqGt(this.sndNxt, this.sndMax)) {
        this.sndMax = this.sndNxt;
        this.bytesSent += len;
      }
      if (this.rtoAt === Infinity) this.rtoAt = now + this.rto;
      if (this.timedSeq < 0 && !this.tsOk && !retransmitting) {
        this.timedSeq = seq;
        this.timedAt = now;
      }
    }
    // The FIN goes once every byte before it went (again, after a go-back).
    const dataEnd = seqAdd(this.sndUna, this.queued);
    if (this.finQueued && this.sndNxt === dataEnd && (this.finSeq < 0 || this.finSeq === dataEnd)) this.sendFin(now);
  }

  private sendFin(now: number): void {
    const first = this.finSeq < 0;
    if (first) this.finSeq = seqAdd(this.sndUna, this.queued);
    this.fillHeader(FIN | ACK, this.finSeq, now);
    this.payloadLength = 0;
    this.emit();
    this.sndNxt = seqAdd(this.finSeq, 1);
    if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
    if (this.rtoAt === Infinity) this.rtoAt = now + this.rto;
    if (first) {
      if (this.state === 'ESTABLISHED') this.state = 'FIN-WAIT-1';
      else if (this.state === 'CLOSE-WAIT') this.state = 'LAST-ACK';
    }
  }

  private sendData(seq: number, len: number, now: number): void {
    this.fillHeader(len > 0 ? ACK | PSH : ACK, seq, now);
    // effMss leaves no room for SACK blocks: a full segment carries as many as fit (2 NOPs + kind/len, 8 each)
    if (len > 0 && this.sackCount > 0) this.sackCount = Math.max(0, Math.min(this.sackCount, (this.effMss - len - 4) >> 3));
    this.payloadSeq = seq;
    this.payloadLength = len;
    this.emit();
    this.payloadLength = 0;
  }

  private fillHeader(flags: number, seq: number, now: number): void {
    this.flags = flags;
    this.seq = seq;
    this.ack = this.rcvNxt;
    const wnd = this.advertise();
    this.window = wnd;
    this.tsVal = this.tsOk ? this.tsNow(now) : -1;
    this.tsEcr = this.tsRecent;
    this.fillSack();
    // Any segment carries our ACK: the delayed one is no longer due.
    this.ackAt = Infinity;
    this.unackedSegs = 0;
  }

  /** The window field: free receive room, never moving the right edge left (RFC 9293 §3.8.6.2.2). */
  private advertise(): number {
    let wnd = this.rcvWindow();
    const floor = seqDiff(this.rcvAdvRight, this.rcvNxt);
    if (wnd < floor) wnd = floor;
    let field = wnd >>> this.rcvShift;
    if (field > 0xffff) field = 0xffff;
    wnd = field << this.rcvShift;
    if (seqGt(seqAdd(this.rcvNxt, wnd), this.rcvAdvRight)) this.rcvAdvRight = seqAdd(this.rcvNxt, wnd);
    this.lastWndSent = wnd;
    return field;
  }

  private sendAck(now: number): void {
    if (this.state === 'CLOSED' || this.state === 'SYN-SENT' || this.pending) return;
    // sndMax, not sndNxt: after a go-back retransmission sndNxt is behind what the
    // peer has seen, and an ACK with an old sequence number fails its acceptability
    // test (RFC 9293 §3.10.7.4) — both ends would then ignore each other's ACKs (as BSD does).
    this.fillHeader(ACK, this.sndMax, now);
    this.payloadLength = 0;
    this.emit();
  }

  private closed(reason: Parameters<TcpSink['onClosed']>[0]): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.pending = false;
    this.rtoAt = this.ackAt = this.persistAt = this.keepaliveAt = this.timeWaitAt = Infinity;
    this.chunks = [];
    this.ooo = [];
    this.held = [];
    this.unaccepted = false;
    this.sink.onClosed(reason);
  }
}
