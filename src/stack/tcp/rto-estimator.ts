// The retransmission timeout (RFC 6298): smoothed RTT and its variance from
// samples (every ACK's echoed timestamp, RFC 7323 §4, or one timed segment at
// a time without timestamps, Karn's rule), exponential backoff after a
// timeout, and the count of retries of the same segment.
export class RtoEstimator {
  srtt = -1;
  rttvar = 0;
  rto: number;
  /** Timeouts since the last new ACK: samples are not taken while backed off (Karn). */
  backoff = 0;
  retries = 0;
  /** The one segment timed when there are no timestamps (-1: none), and when it left. */
  timedSeq = -1;
  timedAt = 0;

  constructor(
    private readonly min: number,
    private readonly max: number,
    initial: number,
  ) {
    this.rto = initial;
  }

  /** One RTT measurement in ms (RFC 6298 §2.2-2.3). */
  sample(r: number): void {
    if (r < 0) return;
    if (this.srtt < 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = Math.min(Math.max(this.srtt + Math.max(1, 4 * this.rttvar), this.min), this.max);
  }

  /** A timeout: double the RTO (§5.5) and forget the timed segment (it may be resent). */
  backOff(): void {
    this.backoff++;
    this.rto = Math.min(this.rto * 2, this.max);
    this.timedSeq = -1;
  }

  /** Something new was acknowledged: the backoff and the retry count end. */
  progress(): void {
    this.backoff = 0;
    this.retries = 0;
  }
}
