// The pure TCP state machine (RFC 9293), our side being the server of a
// connection a client made into the TUN (or the client, for simulations).
// Segments and a clock in; segments and stream events out through a TcpSink.
// No I/O, no clock reads, no timers of its own: the owner calls onTimer() at
// nextDeadline(). This file ties the parts together: the states and their
// transitions, the handshake, close and abort, the timers; the receive side
// is tcp-receiver.ts, the send side tcp-sender.ts (with the send buffer,
// congestion control, the RTO estimator and the SACK scoreboard), and every
// segment is filled by tcp-transmitter.ts into one reused TcpOutSegment.
import { ACK, FIN, RST, SYN, type CloseReason, type Segment, type TcpOptions, type TcpSink } from '../contracts.js';
import { seqAdd, seqGe, seqGt, seqLe, seqLt } from '../seq.js';
import { Negotiated } from './negotiated.js';
import type { CookieDecoded } from './syn-cookie.js';
import { TcpTransmitter } from './tcp-transmitter.js';
import { Keepalive } from './keepalive.js';
import { receiveSynSent } from './tcp-active-open.js';
import { debugState } from './tcp-debug.js';
import { TcpReceiver, type ReceiverHost } from './tcp-receiver.js';
import { TcpSender, type SenderHost } from './tcp-sender.js';
import { afterFinSent, canSendData, canWrite, receivesData, synchronized, type TcpState } from './tcp-state.js';

export type { TcpState } from './tcp-state.js';

export class TcpConnection implements SenderHost, ReceiverHost {
  state: TcpState = 'CLOSED';
  /** Passive open not yet answered (no SYN-ACK sent). */
  pending = false;
  private readonly neg: Negotiated;
  private readonly rcv: TcpReceiver;
  private readonly snd: TcpSender;
  private readonly tx: TcpTransmitter;
  private readonly keepalive: Keepalive;
  private timeWaitAt = Infinity;

  private constructor(
    private readonly sink: TcpSink,
    private readonly opts: TcpOptions,
    iss: number,
  ) {
    this.neg = new Negotiated(opts, iss >>> 0);
    this.rcv = new TcpReceiver(this, sink, this.neg, opts);
    this.snd = new TcpSender(this, sink, this.neg, opts, iss);
    this.keepalive = new Keepalive(opts);
    this.tx = this.snd.tx = new TcpTransmitter(sink, this.neg, this.rcv, opts, this.snd.buf);
  }

  get sendQueued() {
    return this.snd.queued;
  }
  get bytesReceived() {
    return this.rcv.bytesReceived;
  }
  get bytesSent() {
    return this.snd.bytesSent;
  }
  get retransmits() {
    return this.snd.retransmits;
  }
  /** Bytes this connection holds for its two directions: send queue, out-of-order and undelivered-to-app data. */
  get bufferedBytes() {
    return this.snd.queued + this.rcv.unconsumed + this.rcv.ooo.bytes;
  }

  /** Passive open: the client's SYN is recorded; nothing is sent until accept(). */
  static fromSyn(sink: TcpSink, opts: TcpOptions, iss: number, syn: Segment, now: number): TcpConnection {
    const c = new TcpConnection(sink, opts, iss);
    c.state = 'SYN-RECEIVED';
    c.pending = true;
    c.neg.takeSyn(syn);
    c.rcv.start(syn.seq);
    c.snd.peerSyn(syn);
    c.keepalive.arm(now);
    return c;
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
    c.neg.takeCookie(d, ack);
    c.rcv.cookieAck(ack);
    c.snd.cookieAck(ack);
    c.keepalive.arm(now);
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

  accept(now: number): void {
    if (this.rcv.holding) return this.rcv.release(); // a cookie connection's app arrived
    if (!this.pending) return;
    this.pending = false;
    this.snd.cc.start(this.neg.effMss);
    this.sendSyn(true, now);
  }

  private sendSyn(withAck: boolean, now: number): void {
    this.tx.syn(withAck, this.snd.iss, now);
    this.snd.synSent(now);
  }

  /** push false: queued only, sent by the next push() (or close(), which then sends the FIN with it). */
  write(data: Buffer, now: number, push = true): number {
    if (this.snd.finQueued || !canWrite(this.state)) return 0;
    const n = this.snd.enqueue(data);
    if (push) this.push(now);
    return n;
  }

  /** Sends what was written and the windows allow. */
  push(now: number): void {
    // Queued in SYN-RECEIVED, it leaves once the handshake completes.
    if (this.state !== 'SYN-RECEIVED' && this.state !== 'CLOSED') this.snd.output(now);
  }

  consumed(n: number, now: number): void {
    if (this.rcv.consumed(n) && synchronized(this.state)) this.sendAck(now);
  }

  close(now: number): void {
    switch (this.state) {
      case 'SYN-RECEIVED':
        if (this.pending) return this.abort(now);
        this.snd.finQueued = true; // FIN once established (RFC 9293 §3.10.4)
        return;
      case 'SYN-SENT':
        return this.closed('aborted');
      case 'ESTABLISHED':
      case 'CLOSE-WAIT':
        if (this.snd.finQueued) return;
        this.snd.finQueued = true;
        this.snd.output(now);
        return;
      default:
        return;
    }
  }

  /** silent: forget a connection not yet answered without a word, as a full SYN queue does (the client retries its SYN). */
  abort(_now: number, silent = false): void {
    if (this.state === 'CLOSED') return;
    if (silent && this.pending) return this.closed('aborted');
    if (this.pending) {
      // Refused before answering: RST|ACK acknowledging the SYN (RFC 9293 §3.10.7.1).
      this.tx.rst(0, this.rcv.rcvNxt, RST | ACK);
    } else if (this.state !== 'SYN-SENT' && this.state !== 'TIME-WAIT') {
      this.tx.rst(this.snd.sndMax, this.rcv.rcvNxt, RST | ACK);
    }
    this.closed('aborted');
  }

  nextDeadline(): number {
    if (this.state === 'CLOSED') return Infinity;
    return Math.min(this.snd.rtoAt, this.rcv.ackAt, this.snd.persistAt, this.keepalive.at, this.timeWaitAt);
  }

  onTimer(now: number): void {
    if (this.state === 'CLOSED') return;
    if (now >= this.timeWaitAt) return this.closed('time-wait-expired');
    if (now >= this.snd.rtoAt) this.onRto(now);
    if (this.isClosed()) return;
    if (now >= this.snd.persistAt) this.snd.onPersist(now);
    if (now >= this.rcv.ackAt) this.sendAck(now);
    if (now >= this.keepalive.at) this.onKeepalive(now);
  }

  /** RFC 6298 §5.4-5.7: resend the SYN, or go back to the first unacknowledged byte; back off; give up after maxRetries. */
  private onRto(now: number): void {
    const snd = this.snd;
    if (this.pending) {
      snd.rtoAt = Infinity;
      return;
    }
    if (++snd.rto.retries > this.opts.maxRetries) {
      if (this.state !== 'SYN-SENT') this.tx.rst(snd.sndNxt, this.rcv.rcvNxt, RST | ACK);
      return this.closed('timeout');
    }
    snd.rto.backOff();
    if (this.state === 'SYN-SENT' || (this.state === 'SYN-RECEIVED' && seqLe(snd.sndUna, snd.iss))) {
      snd.retransmits++;
      snd.rtoAt = now + snd.rto.rto;
      this.sendSyn(this.state === 'SYN-RECEIVED', now);
      return;
    }
    snd.goBack(now);
  }

  private onKeepalive(now: number): void {
    if (!this.keepalive.probe(now)) {
      this.tx.rst(this.snd.sndNxt, this.rcv.rcvNxt, RST | ACK);
      return this.closed('timeout');
    }
    // seq = sndNxt - 1 with no data: the peer must answer with an ACK (RFC 9293 §3.8.4).
    this.tx.transmit(ACK, seqAdd(this.snd.sndNxt, -1), 0, now);
  }

  private enterTimeWait(now: number): void {
    this.state = 'TIME-WAIT';
    this.snd.rtoAt = Infinity;
    this.snd.persistAt = Infinity;
    this.keepalive.stop();
    this.rcv.ackAt = Infinity;
    this.timeWaitAt = now + this.opts.timeWait;
  }

  /** RFC 9293 §3.10.7: one arriving segment. */
  receive(seg: Segment, now: number): void {
    switch (this.state) {
      case 'CLOSED':
        return;
      case 'SYN-SENT':
        return receiveSynSent(seg, this.snd, this.rcv, this.neg, this.tx, {
          reset: () => this.closed('reset-by-peer'),
          established: () => {
            this.state = 'ESTABLISHED';
            this.sendAck(now);
            this.sink.onOpen();
            this.snd.output(now);
          },
          simultaneous: () => {
            this.state = 'SYN-RECEIVED';
            this.sendSyn(true, now);
          },
        });
      default:
        break;
    }
    if (this.pending) {
      // Waiting for our upstream: a repeated SYN changes nothing; a RST ends it.
      if (seg.flags & RST && seg.seq === this.rcv.rcvNxt) this.closed('reset-by-peer');
      return;
    }
    this.keepalive.arm(now);
    if (this.state === 'SYN-RECEIVED' && seg.flags & SYN && !(seg.flags & ACK) && seg.seq === this.rcv.irs) {
      return this.sendSyn(true, now); // our SYN-ACK was lost
    }
    const segLen = seg.payloadLength + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);

    // 1. Acceptability (§3.10.7.4).
    if (!this.rcv.acceptable(seg.seq, segLen)) {
      if (!(seg.flags & RST)) this.sendAck(now);
      // TIME-WAIT: a retransmitted FIN means our ACK was lost; restart the 2 MSL wait (§3.10.7.4).
      if (this.state === 'TIME-WAIT' && seg.flags & FIN) this.timeWaitAt = now + this.opts.timeWait;
      return;
    }
    // 2. RST (RFC 5961 §3.2): exact → reset; in window → challenge ACK.
    if (seg.flags & RST) {
      if (seg.seq === this.rcv.rcvNxt) return this.closed(this.state === 'TIME-WAIT' ? 'time-wait-expired' : 'reset-by-peer');
      return this.sendAck(now);
    }
    // 4. SYN in a synchronized state (RFC 5961 §4): challenge ACK.
    if (seg.flags & SYN) {
      if (this.state === 'SYN-RECEIVED' && seg.seq === this.rcv.irs) return; // our SYN-ACK crossed a retransmitted SYN
      return this.sendAck(now);
    }
    // 5. ACK.
    if (!(seg.flags & ACK)) return;
    if (this.neg.tsOk && seg.tsVal >= 0 && seqLe(seg.seq, this.rcv.rcvNxt)) this.neg.tsRecent = seg.tsVal; // RFC 7323 §4.3
    if (!this.processAck(seg, now)) return;
    if (this.isClosed()) return;

    // 7. Data.
    if (seg.payloadLength > 0) {
      if (receivesData(this.state)) {
        this.rcv.receiveData(seg, now);
      } else if (seqGe(seg.seq, this.rcv.rcvNxt)) {
        // data after the peer's FIN: nothing to deliver it to
        this.sendAck(now);
      }
    }
    // 8. FIN, once everything before it has arrived.
    if (seg.flags & FIN) {
      const finSeq = seqAdd(seg.seq, seg.payloadLength);
      if (finSeq === this.rcv.rcvNxt) this.receiveFin(now);
      else if (seqLt(finSeq, this.rcv.rcvNxt)) {
        // A retransmitted FIN: our ACK was lost. In TIME-WAIT restart the 2 MSL wait (§3.10.7.4).
        this.sendAck(now);
        if (this.state === 'TIME-WAIT') this.timeWaitAt = now + this.opts.timeWait;
      }
    }
  }

  /** §3.10.7.4 fifth check. Returns false when the segment must be dropped. */
  private processAck(seg: Segment, now: number): boolean {
    const ack = seg.ack;
    const snd = this.snd;
    if (this.state === 'SYN-RECEIVED') {
      if (seqLe(ack, snd.sndUna) || seqGt(ack, snd.sndMax)) {
        this.tx.rst(ack, 0, RST);
        return false;
      }
      // The ACK of our SYN takes the SYN's sequence slot, not a data byte: data
      // queued before the handshake completed starts at iss + 1 (RFC 9293 §3.4).
      snd.synAcked(seg, now);
      this.state = 'ESTABLISHED';
      this.sink.onOpen();
      if (this.state !== 'ESTABLISHED') return false;
    }
    if (seqGt(ack, snd.sndMax)) {
      // RFC 5961 §5: ACK of data never sent.
      this.sendAck(now);
      return false;
    }
    snd.onAck(seg, now);
    if (snd.finAcked(ack)) {
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
    snd.output(now);
    return true;
  }

  private receiveFin(now: number): void {
    this.rcv.receiveFin();
    this.sendAck(now);
    switch (this.state) {
      case 'SYN-RECEIVED':
      case 'ESTABLISHED':
        this.state = 'CLOSE-WAIT';
        this.rcv.peerFin();
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

  /** SenderHost */
  canSendData() {
    return canSendData(this.state);
  }
  finSent() {
    this.state = afterFinSent(this.state);
  }

  /** ReceiverHost: a pure ACK. */
  sendAck(now: number): void {
    if (this.state === 'CLOSED' || this.state === 'SYN-SENT' || this.pending) return;
    // sndMax, not sndNxt: after a go-back retransmission sndNxt is behind what the
    // peer has seen, and an ACK with an old sequence number fails its acceptability
    // test (RFC 9293 §3.10.7.4) — both ends would then ignore each other's ACKs (as BSD does).
    this.tx.transmit(ACK, this.snd.sndMax, 0, now);
  }

  /** State read through a call, so the compiler does not narrow it across callbacks. */
  private isClosed(): boolean {
    return this.state === 'CLOSED';
  }

  private closed(reason: CloseReason): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.pending = false;
    this.keepalive.stop();
    this.timeWaitAt = Infinity;
    this.snd.clear();
    this.rcv.clear();
    this.sink.onClosed(reason);
  }

  /** The connection's variables, sequence numbers relative to the ISNs: for diagnostics (SIGUSR2). */
  debugState(now: number): Record<string, number | string | boolean> {
    return debugState(this.state, this.snd, this.rcv, this.neg, { keepaliveAt: this.keepalive.at, timeWaitAt: this.timeWaitAt }, now);
  }
}
