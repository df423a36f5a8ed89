// What the handshake agreed, shared by the receiver, the sender and the
// connection: the peer's MSS (RFC 9293 §3.7.1), window scaling and timestamps
// (RFC 7323), SACK-permitted (RFC 2018), and our timestamp clock.
import type { Segment, TcpOptions } from '../contracts.js';
import type { CookieDecoded } from './syn-cookie.js';

/** Bytes of the timestamps option with its padding, carried by every segment once agreed. */
const TS_OPT_LEN = 12;

/** Our timestamp clock's offset for a connection with ISN iss (a cookie SYN-ACK must use the same). */
export function tsOffsetFor(iss: number): number {
  return (iss * 2654435761) >>> 0;
}

export class Negotiated {
  mssPeer = 536;
  tsOk = false;
  /** The peer's latest timestamp, echoed in ours (RFC 7323 §4.3). */
  tsRecent = 0;
  sackPerm = false;
  wsOk = false;
  /** The peer's window scale (applied to the windows it sends), and ours. */
  sndShift = 0;
  rcvShift = 0;
  private readonly tsOffset: number;

  constructor(
    readonly opts: TcpOptions,
    iss: number,
  ) {
    this.tsOffset = tsOffsetFor(iss);
    this.settle();
  }

  /** The options of the peer's SYN: only what both sides offer is used. */
  takeSyn(syn: Segment): void {
    this.mssPeer = syn.mss > 0 ? syn.mss : 536;
    this.wsOk = syn.wscale >= 0 && this.opts.wscale >= 0;
    this.sndShift = this.wsOk ? syn.wscale : 0;
    this.rcvShift = this.wsOk ? this.opts.wscale : 0;
    this.tsOk = this.opts.timestamps && syn.tsVal >= 0;
    if (this.tsOk) this.tsRecent = syn.tsVal;
    this.sackPerm = this.opts.sack && syn.sackOk;
    this.settle();
  }

  /** The options a SYN cookie decoded, and the timestamp of the ACK that carried it. */
  takeCookie(d: CookieDecoded, ack: Segment): void {
    this.mssPeer = d.mss;
    this.tsOk = this.opts.timestamps && d.tsOk;
    this.wsOk = this.tsOk && d.wscale >= 0 && this.opts.wscale >= 0;
    this.sndShift = this.wsOk ? d.wscale : 0;
    this.rcvShift = this.wsOk ? this.opts.wscale : 0;
    this.sackPerm = this.tsOk && this.opts.sack && d.sackOk;
    if (this.tsOk) this.tsRecent = ack.tsVal;
    this.settle();
  }

  /** Largest payload per packet: MSS less the options every segment carries (set with the options, read per segment). */
  effMss = 0;
  /**
   * Largest payload per segment of new data: effMss, or with a sendMax above
   * it (TSO) the most whole effMss pieces that fit in sendMax.
   */
  sendSize = 0;

  private settle(): void {
    const mss = (this.effMss = Math.max(1, Math.min(this.mssPeer, this.opts.mss) - (this.tsOk ? TS_OPT_LEN : 0)));
    this.sendSize = this.opts.sendMax > mss ? Math.floor(this.opts.sendMax / mss) * mss : mss;
  }

  /** Our timestamp value at now (ms). */
  tsNow(now: number): number {
    return (this.tsOffset + Math.floor(now)) >>> 0;
  }
}
