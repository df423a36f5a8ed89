// The send side of a connection (RFC 9293 §3.3.1 send sequence space): what
// may go out under the peer's window and the congestion window (sender SWS
// avoidance, §3.8.6.2.1), the FIN after the last byte, processing of ACKs
// (RTT samples, freeing the send buffer, the peer's window, duplicate ACKs),
// fast retransmit and SACK-driven recovery, the go-back after a timeout and
// zero-window probes. Segments leave through the transmitter, which adds our
// ACK, window and options.
import { PSH, ACK, FIN, type Segment, type TcpOptions, type TcpSink } from '../contracts.js';
import { seqAdd, seqDiff, seqGe, seqGt, seqLe, seqLt } from '../seq.js';
import { NewReno } from './congestion.js';
import type { Negotiated } from './negotiated.js';
import { RtoEstimator } from './rto-estimator.js';
import { SackScoreboard } from './sack-scoreboard.js';
import { SendBuffer } from './send-buffer.js';
import type { TcpTransmitter } from './tcp-transmitter.js';

/** Holes resent per arriving ACK in SACK recovery: ACK-clocked, with a little room to catch up. */
const SACK_RETX_PER_ACK = 2;

export interface SenderHost {
  /** Data may go out in the connection's state (ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1, CLOSING, LAST-ACK). */
  canSendData(): boolean;
  /** Our FIN went out for the first time. */
  finSent(): void;
}

export class TcpSender {
  readonly iss: number;
  sndUna: number;
  sndNxt: number;
  /** Highest sequence sent so far (sndNxt goes back on retransmission). */
  sndMax: number;
  sndWnd = 0;
  sndWl1 = 0;
  sndWl2 = 0;
  finQueued = false;
  /** Sequence number of our FIN once sent, else -1. */
  finSeq = -1;
  private writeBlocked = false;
  bytesSent = 0;
  retransmits = 0;
  readonly buf: SendBuffer;
  /** Segments leave through it (set by the connection, which builds it over this buffer). */
  tx!: TcpTransmitter;
  readonly cc = new NewReno();
  readonly rto: RtoEstimator;
  readonly sacked = new SackScoreboard();
  /** In SACK recovery: the next sequence number to consider resending. */
  private retxNext = 0;
  rtoAt = Infinity;
  persistAt = Infinity;
  private persistBackoff = 0;

  constructor(
    private readonly host: SenderHost,
    private readonly sink: TcpSink,
    private readonly neg: Negotiated,
    private readonly opts: TcpOptions,
    iss: number,
  ) {
    this.iss = iss >>> 0;
    this.sndUna = this.sndNxt = this.sndMax = this.iss;
    // Data starts after the SYN's sequence slot.
    this.buf = new SendBuffer(seqAdd(this.iss, 1));
    this.rto = new RtoEstimator(opts.rtoMin, opts.rtoMax, opts.rtoInitial);
  }

  get queued(): number {
    return this.buf.queued;
  }

  inFlight(): number {
    return seqDiff(this.sndNxt, this.sndUna);
  }

  unsent(): number {
    return this.buf.queued - Math.min(this.inFlight(), this.buf.queued);
  }

  /** Takes what fits of data into the send buffer (by reference); fewer than offered means "tell me when writable". */
  enqueue(data: Buffer): number {
    const room = this.opts.sndBuf - this.buf.queued;
    if (room <= 0) {
      this.writeBlocked = true;
      return 0;
    }
    const n = Math.min(room, data.length);
    this.buf.push(data, n);
    if (n < data.length) this.writeBlocked = true;
    return n;
  }

  /** The peer's SYN: its window, never scaled in a SYN (RFC 7323 §2.2). */
  peerSyn(syn: Segment): void {
    this.sndWnd = syn.window;
    this.sndWl1 = syn.seq;
  }

  /** A SYN cookie's ACK (ack - 1 = iss): our SYN is acknowledged, the window scaled as the cookie says. */
  cookieAck(ack: Segment): void {
    this.sndUna = this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    this.sndWnd = ack.window << this.neg.sndShift;
    this.sndWl1 = ack.seq;
    this.sndWl2 = ack.ack;
    this.cc.start(this.neg.effMss);
  }

  /** Our SYN went out (again): it takes sequence number iss; the timer runs. */
  synSent(now: number): void {
    this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
    if (this.rtoAt === Infinity) this.rtoAt = now + this.rto.rto;
  }

  /**
   * Our SYN is acknowledged (SYN-RECEIVED → ESTABLISHED): its slot leaves the
   * send space, not a data byte, and its timer stops (RTT sampled unless it was resent).
   */
  synAcked(seg: Segment, now: number): void {
    if (this.neg.tsOk && seg.tsEcr !== 0 && this.rto.backoff === 0) this.rto.sample(this.neg.tsNow(now) - seg.tsEcr);
    this.sndUna = seqAdd(this.iss, 1);
    if (seqLt(this.sndNxt, this.sndUna)) this.sndNxt = this.sndUna;
    this.rto.progress();
    this.rtoAt = Infinity;
    this.sndWnd = seg.window << this.neg.sndShift;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
  }

  /** The SYN-ACK of our active open: the peer's window, unscaled (RFC 7323 §2.2). */
  synAckReceived(seg: Segment): void {
    this.sndUna = seg.ack;
    this.sndWnd = seg.window;
    this.sndWl1 = seg.seq;
    this.sndWl2 = seg.ack;
    this.rtoAt = Infinity;
    this.rto.retries = 0;
  }

  /** §3.10.7.4 fifth, for an ACK within what we sent: SACK blocks, new data acknowledged or a duplicate, the window. */
  onAck(seg: Segment, now: number): void {
    const ack = seg.ack;
    const wnd = seg.window << this.neg.sndShift;
    if (seg.sackCount > 0 && this.neg.sackPerm) this.sacked.note(seg, this.sndUna, this.sndMax);
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
  }

  /** Our FIN is acknowledged by ack. */
  finAcked(ack: number): boolean {
    return this.finSeq >= 0 && seqGt(ack, this.finSeq);
  }

  /** Sends what the windows allow, then the FIN when everything before it went. */
  output(now: number, retransmitting = false): void {
    if (!this.host.canSendData()) return;
    const mss = this.neg.effMss;
    for (;;) {
      const offset = this.inFlight();
      const unsent = this.buf.queued - offset;
      if (unsent <= 0) break;
      const usable = this.cc.window(this.sndWnd) - offset;
      if (usable <= 0) {
        if (this.sndWnd === 0 && offset === 0 && this.persistAt === Infinity) this.persistAt = now + this.rto.rto;
        break;
      }
      const len = Math.min(mss, unsent, usable);
      // Avoid a silly small segment when more is queued and the window will open (sender SWS, RFC 9293 §3.8.6.2.1).
      if (len < mss && len < unsent && offset > 0) break;
      const seq = this.sndNxt;
      if (seqLt(seq, this.sndMax)) this.retransmits++;
      const end = seqAdd(seq, len);
      // The last bytes carry the FIN when it is queued (as Linux does): the
      // peer reads the data and our close at once, and closes second.
      if (this.finQueued && len === unsent && (this.finSeq < 0 || this.finSeq === end)) {
        const first = this.finSeq < 0;
        this.finSeq = end;
        this.tx.transmit(FIN | ACK | PSH, seq, len, now);
        this.sndNxt = seqAdd(end, 1);
        if (seqGt(this.sndNxt, this.sndMax)) {
          this.sndMax = this.sndNxt;
          this.bytesSent += len;
        }
        if (this.rtoAt === Infinity) this.rtoAt = now + this.rto.rto;
        if (first) this.host.finSent();
        return;
      }
      this.sendData(seq, len, now);
      this.sndNxt = end;
      if (seqGt(this.sndNxt, this.sndMax)) {
        this.sndMax = this.sndNxt;
        this.bytesSent += len;
      }
      if (this.rtoAt === Infinity) this.rtoAt = now + this.rto.rto;
      if (this.rto.timedSeq < 0 && !this.neg.tsOk && !retransmitting) {
        this.rto.timedSeq = seq;
        this.rto.timedAt = now;
      }
    }
    // The FIN goes once every byte before it went (again, after a go-back).
    const dataEnd = seqAdd(this.sndUna, this.buf.queued);
    if (this.finQueued && this.sndNxt === dataEnd && (this.finSeq < 0 || this.finSeq === dataEnd)) this.sendFin(now);
  }

  /** RFC 6298 §5.4-5.7 after a timeout of data: collapse the window and go back to sndUna. */
  goBack(now: number): void {
    this.cc.onTimeout(seqDiff(this.sndMax, this.sndUna), this.neg.effMss);
    this.sacked.clear();
    this.sndNxt = this.sndUna;
    this.rtoAt = Infinity;
    this.output(now, true);
    if (this.rtoAt === Infinity && this.inFlight() > 0) this.rtoAt = now + this.rto.rto;
  }

  /** Zero-window probe (RFC 9293 §3.8.6.1): one byte's worth below the window elicits an ACK. */
  onPersist(now: number): void {
    this.persistAt = Infinity;
    if (this.sndWnd !== 0 || this.unsent() === 0) return this.output(now);
    // seq = sndUna - 1 carries no new data, so it costs no sequence space; the
    // peer answers an old segment with an ACK that shows its window (as Linux does).
    this.tx.transmit(ACK, seqAdd(this.sndUna, -1), 0, now);
    this.persistBackoff++;
    this.persistAt = now + Math.min(this.rto.rto * 2 ** this.persistBackoff, this.opts.rtoMax);
  }

  clear(): void {
    this.rtoAt = this.persistAt = Infinity;
    this.buf.clear();
  }

  private sendFin(now: number): void {
    const first = this.finSeq < 0;
    if (first) this.finSeq = seqAdd(this.sndUna, this.buf.queued);
    this.tx.transmit(FIN | ACK, this.finSeq, 0, now);
    this.sndNxt = seqAdd(this.finSeq, 1);
    if (seqGt(this.sndNxt, this.sndMax)) this.sndMax = this.sndNxt;
    if (this.rtoAt === Infinity) this.rtoAt = now + this.rto.rto;
    if (first) this.host.finSent();
  }

  private sendData(seq: number, len: number, now: number): void {
    this.tx.transmit(len > 0 ? ACK | PSH : ACK, seq, len, now);
  }

  private ackAdvanced(ack: number, seg: Segment, now: number): void {
    const rto = this.rto;
    let acked = seqDiff(ack, this.sndUna);
    // RTT sample (RFC 6298 §3 with Karn; RFC 7323 §4 with timestamps).
    if (this.neg.tsOk && seg.tsEcr !== 0 && rto.backoff === 0) rto.sample(this.neg.tsNow(now) - seg.tsEcr);
    else if (rto.timedSeq >= 0 && seqGt(ack, rto.timedSeq)) rto.sample(now - rto.timedAt);
    if (rto.timedSeq >= 0 && seqGt(ack, rto.timedSeq)) rto.timedSeq = -1;
    rto.progress();
    // Remove acknowledged bytes (the FIN occupies a sequence number, not a byte).
    if (this.finAcked(ack)) acked -= 1;
    const dataAcked = Math.min(acked, this.buf.queued);
    this.buf.drop(dataAcked);
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.sacked.trim(this.sndUna);
    const cc = this.cc;
    const mss = this.neg.effMss;
    if (cc.inRecovery && cc.spurious(seg.tsEcr)) {
      // The ACK echoes the original's timestamp, not the retransmission's: it was reordering, not loss.
      cc.undo();
    } else if (cc.inRecovery) {
      if (seqGe(ack, cc.recover)) {
        cc.exitRecovery();
      } else {
        // Partial ACK: resend the holes the SACK blocks show, else the next one (RFC 6582 §3.2 step 4).
        if (!this.retransmitHoles(now) && !seqGt(this.retxNext, this.sndUna)) this.retransmitHead(now);
        cc.partialAck(dataAcked, mss);
      }
    } else {
      cc.grow(dataAcked, mss);
    }
    cc.ackedNew();
    this.rtoAt = this.inFlight() > 0 ? now + rto.rto : Infinity;
    if (this.writeBlocked && this.buf.queued < this.opts.sndBuf) {
      this.writeBlocked = false;
      this.sink.onWritable();
    }
  }

  private onDupAck(now: number): void {
    const cc = this.cc;
    const mss = this.neg.effMss;
    if (cc.inRecovery) {
      cc.cwnd += mss; // inflate (RFC 5681 §3.2 step 4)
      this.retransmitHoles(now);
      this.output(now);
      return;
    }
    const segsOut = Math.ceil(this.inFlight() / mss);
    if (!cc.duplicate(segsOut, this.buf.queued - this.inFlight() > 0, mss)) {
      // one new segment per duplicate: each says one segment left the network
      this.output(now);
      return;
    }
    cc.enterRecovery(this.inFlight(), this.sndMax, mss);
    this.retxNext = this.sndUna;
    this.retransmitHead(now);
    cc.retransmitted(this.neg.tsOk ? this.tx.lastTsVal : -1, mss);
  }

  /**
   * SACK recovery (after RFC 6675's NextSeg, simplified): resend the unSACKed
   * holes below the highest SACKed byte, each once per recovery, a few per
   * ACK. False when the blocks show nothing to resend.
   */
  private retransmitHoles(now: number): boolean {
    const sacked = this.sacked;
    if (!this.neg.sackPerm || sacked.count === 0) return false;
    if (seqLt(this.retxNext, this.sndUna)) this.retxNext = this.sndUna;
    const high = sacked.high;
    let sent = 0;
    while (sent < SACK_RETX_PER_ACK) {
      this.retxNext = sacked.skipSacked(this.retxNext);
      if (!seqLt(this.retxNext, high)) break;
      const holeEnd = sacked.holeEnd(this.retxNext);
      const len = Math.min(this.neg.effMss, seqDiff(holeEnd, this.retxNext), this.buf.queued - seqDiff(this.retxNext, this.sndUna));
      if (len <= 0) break;
      this.retransmits++;
      this.rto.timedSeq = -1;
      this.sendData(this.retxNext, len, now);
      this.retxNext = seqAdd(this.retxNext, len);
      sent++;
    }
    return sent > 0;
  }

  private retransmitHead(now: number): void {
    const len = Math.min(this.neg.effMss, seqDiff(this.sndMax, this.sndUna), this.buf.queued);
    if (len > 0) {
      this.retransmits++;
      this.rto.timedSeq = -1;
      this.sendData(this.sndUna, len, now);
      if (seqLt(this.retxNext, seqAdd(this.sndUna, len))) this.retxNext = seqAdd(this.sndUna, len);
    } else if (this.finSeq >= 0 && this.sndUna === this.finSeq) {
      this.retransmits++;
      this.sendFin(now);
    }
  }
}
