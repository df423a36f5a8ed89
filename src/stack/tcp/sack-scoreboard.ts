// The sender's record of what the peer's SACK blocks (RFC 2018) say it holds
// beyond the cumulative ACK: merged, sorted ranges within (sndUna, sndMax],
// bounded in number, so the holes between them are what to resend (after
// RFC 6675's scoreboard, simplified).
import type { Segment } from '../contracts.js';
import { seqGt, seqLe, seqLt } from '../seq.js';

/** Ranges kept; more are merged away or the highest dropped (recovery then falls back to the head). */
const MAX_RANGES = 16;
const NONE = new Uint32Array(0);

export class SackScoreboard {
  /** Pairs [left, right) in sequence order; made on the first block (most connections never see one). */
  private r = NONE;
  count = 0;

  /** Records the segment's blocks, ignoring any outside (sndUna, sndMax]. */
  note(seg: Segment, sndUna: number, sndMax: number): void {
    for (let i = 0; i < seg.sackCount; i++) {
      const l = seg.sack[2 * i];
      const r = seg.sack[2 * i + 1];
      if (!seqLt(l, r) || !seqLt(sndUna, l) || seqGt(r, sndMax)) continue;
      this.add(l, r);
    }
  }

  /** Merges [l, r) with every range it overlaps or touches, then inserts it in order. */
  add(l: number, r: number): void {
    if (this.r === NONE) this.r = new Uint32Array(2 * MAX_RANGES);
    const a = this.r;
    let n = this.count;
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
    if (n === MAX_RANGES) n--; // full: the highest range goes
    let k = n;
    while (k > 0 && seqGt(a[2 * (k - 1)], l)) k--;
    a.copyWithin(2 * k + 2, 2 * k, 2 * n);
    a[2 * k] = l;
    a[2 * k + 1] = r;
    this.count = n + 1;
  }

  /** Forgets ranges the cumulative ACK has passed. */
  trim(sndUna: number): void {
    const a = this.r;
    let drop = 0;
    while (drop < this.count && seqLe(a[2 * drop + 1], sndUna)) drop++;
    if (drop > 0) {
      a.copyWithin(0, 2 * drop, 2 * this.count);
      this.count -= drop;
    }
    if (this.count > 0 && seqLt(a[0], sndUna)) a[0] = sndUna;
  }

  /** After a timeout the scoreboard may be stale (RFC 6675 §5.1). */
  clear(): void {
    this.count = 0;
  }

  /** The highest SACKed sequence number (count > 0). */
  get high(): number {
    return this.r[2 * this.count - 1];
  }

  /** seq moved past the SACKed range that holds it, if any: where the next hole starts. */
  skipSacked(seq: number): number {
    const a = this.r;
    for (let i = 0; i < this.count; i++) if (seqLe(a[2 * i], seq) && seqLt(seq, a[2 * i + 1])) seq = a[2 * i + 1];
    return seq;
  }

  /** Where the hole starting at seq ends: the next SACKed range's left edge (or high). */
  holeEnd(seq: number): number {
    const a = this.r;
    for (let i = 0; i < this.count; i++) if (seqGt(a[2 * i], seq)) return a[2 * i];
    return this.high;
  }
}
