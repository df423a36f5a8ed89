// Congestion control, NewReno (RFC 5681, RFC 6582) with limited transmit
// (RFC 3042), early retransmit (RFC 5827) and the Eifel undo of a needless
// fast retransmit (RFC 3522): the window arithmetic only. Which segment is
// resent, and when, is the sender's.

/** The duplicate-ACK threshold is doubled each time reordering proves a resend needless, up to this. */
const MAX_DUP_THRESH = 64;

export class NewReno {
  cwnd = 0;
  ssthresh = 0x7fffffff;
  dupAcks = 0;
  inRecovery = false;
  /** sndMax when recovery began: an ACK past it ends recovery. */
  recover = 0;
  /** Duplicate ACKs that start fast retransmit: 3, raised each time one proves spurious (reordering). */
  dupThresh = 3;
  /** Limited transmit: new segments allowed past cwnd on duplicate ACKs, so a small window still gets its three. */
  limitedExtra = 0;
  /** Eifel: tsVal of this recovery's first retransmission (-1: none), and the window to restore if it was needless. */
  private undoTs = -1;
  private undoCwnd = 0;
  private undoSsthresh = 0;

  /** The initial window (RFC 6928): ten segments. */
  start(mss: number): void {
    this.cwnd = 10 * mss;
  }

  /** What may be in flight: the peer's window, cwnd and the limited-transmit allowance. */
  window(sndWnd: number): number {
    return Math.min(sndWnd, this.cwnd + this.limitedExtra);
  }

  /** A retransmission timeout: collapse the window (RFC 5681 §3.1 eq. 4) and leave recovery. */
  onTimeout(flight: number, mss: number): void {
    this.ssthresh = Math.max(flight >> 1, 2 * mss);
    this.cwnd = mss;
    this.inRecovery = false;
    this.dupAcks = 0;
    this.limitedExtra = 0;
    this.undoTs = -1;
  }

  /**
   * New data acknowledged outside recovery: slow start, else congestion
   * avoidance. In recovery the sender calls the recovery steps instead.
   * limit: the most acked bytes one ACK counts for (RFC 3465 §2.3's L): one
   * MSS by default; with TSO one segment of many pieces, so a stretch ACK for
   * a whole segment grows the window as the ACKs for each piece would have.
   */
  grow(acked: number, mss: number, limit = mss): void {
    const counted = Math.min(acked, limit);
    if (this.cwnd < this.ssthresh) this.cwnd += counted;
    else this.cwnd += Math.max(1, Math.floor(counted / mss)) * Math.max(1, Math.floor((mss * mss) / this.cwnd));
  }

  /** Eifel detection: the first ACK past the retransmitted head echoes a timestamp older than the retransmission. */
  spurious(tsEcr: number): boolean {
    if (this.undoTs < 0 || tsEcr === 0) return false;
    const needless = ((tsEcr - this.undoTs) | 0) < 0;
    this.undoTs = -1;
    return needless;
  }

  /** The retransmission was needless (reordering, not loss): restore the window and expect more reordering. */
  undo(): void {
    this.inRecovery = false;
    this.cwnd = Math.max(this.cwnd, this.undoCwnd);
    this.ssthresh = Math.max(this.ssthresh, this.undoSsthresh);
    this.dupThresh = Math.min(this.dupThresh * 2, MAX_DUP_THRESH);
  }

  /** A full ACK ends recovery (RFC 6582 §3.2 step 3). */
  exitRecovery(): void {
    this.inRecovery = false;
    this.cwnd = this.ssthresh;
  }

  /** A partial ACK in recovery deflates by what it acknowledged (RFC 6582 §3.2 step 4). */
  partialAck(acked: number, mss: number): void {
    this.cwnd = Math.max(this.cwnd - acked + mss, mss);
  }

  /** Any new ACK: the duplicate count and the limited-transmit allowance start over. */
  ackedNew(): void {
    this.dupAcks = 0;
    this.limitedExtra = 0;
  }

  /**
   * One more duplicate ACK outside recovery. True when fast retransmit is due;
   * else one new segment per duplicate may go (limited transmit).
   * segsOut: segments in flight; unsent: more data waits to go.
   */
  duplicate(segsOut: number, unsent: boolean, mss: number): boolean {
    this.dupAcks++;
    // Early retransmit: with nothing new to send and few segments out, fewer duplicates can come
    // (not once reordering has been seen: then duplicates mean little).
    const thresh = unsent || this.dupThresh > 3 ? this.dupThresh : Math.max(1, Math.min(this.dupThresh, segsOut - 1));
    if (this.dupAcks < thresh) {
      this.limitedExtra = this.dupAcks * mss;
      return false;
    }
    this.limitedExtra = 0;
    return true;
  }

  /** Fast retransmit (RFC 5681 §3.2): halve, remember what to undo, recover up to sndMax. */
  enterRecovery(flight: number, sndMax: number, mss: number): void {
    this.undoCwnd = this.cwnd;
    this.undoSsthresh = this.ssthresh;
    this.ssthresh = Math.max(flight >> 1, 2 * mss);
    this.recover = sndMax;
    this.inRecovery = true;
  }

  /** After the first retransmission of a recovery: its timestamp (for Eifel) and the inflated window. */
  retransmitted(tsVal: number, mss: number): void {
    this.undoTs = tsVal;
    this.cwnd = this.ssthresh + 3 * mss;
  }
}
