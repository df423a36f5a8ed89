// Out-of-order bytes of the receive side, waiting for the hole before them
// (RFC 9293 §3.10.7.4, "seventh, process the segment text"). Kept as runs:
// merged, sorted ranges of contiguous bytes (after smoltcp's assembler, which
// tracks holes and runs rather than one entry per segment). Only bytes not
// already held are copied; a segment that extends the last run costs O(1),
// any other O(runs); the runs are the SACK blocks (RFC 2018), so filling
// them is O(runs), not a walk over every segment; a filled hole releases its
// run whole. Bounded: at most MAX_RUNS holes and MAX_PIECES stored pieces
// (the bytes are bounded by the caller's window).
import { seqAdd, seqDiff, seqGt, seqLe, seqLt } from '../seq.js';

/** Runs held at once: each is a hole before it. More holes than this and the new segment is dropped. */
const MAX_RUNS = 64;
/** Stored pieces (one per segment, at most): bounds the objects a flood of tiny segments can make. */
const MAX_PIECES = 2048;

interface Run {
  start: number;
  end: number;
  /** The run's bytes in order, one piece per stored segment part. */
  pieces: Buffer[];
}

/** Where drained bytes go: the receiver, which advances rcvNxt as it delivers. */
export interface InOrderSink {
  readonly rcvNxt: number;
  deliver(buf: Buffer, offset: number, length: number): void;
}

export class Reassembly {
  private runs: Run[] = [];
  /** Bytes held. */
  bytes = 0;
  private pieces = 0;
  /** Start of the latest segment taken: its run is the first SACK block (RFC 2018 §4). */
  private recent = 0;

  /** Runs held (each follows a hole). */
  get count(): number {
    return this.runs.length;
  }

  /**
   * Keeps the bytes of [seq, seq + len) (at buf[off]) that are not held yet.
   * seq is past rcvNxt. False when it would need a run or piece over the bounds (dropped).
   */
  add(seq: number, buf: Buffer, off: number, len: number): boolean {
    const end = seqAdd(seq, len);
    const runs = this.runs;
    const n = runs.length;
    this.recent = seq;
    // The usual case: the next segment after the last run.
    if (n > 0 && runs[n - 1].end === seq) {
      if (this.pieces >= MAX_PIECES) return false;
      this.append(runs[n - 1], buf, off, len, end);
      return true;
    }
    // runs[i..j) overlap or touch [seq, end)
    let i = 0;
    while (i < n && seqLt(runs[i].end, seq)) i++;
    let j = i;
    while (j < n && seqLe(runs[j].start, end)) j++;
    if (i === j) {
      if (n >= MAX_RUNS || this.pieces >= MAX_PIECES) return false;
      runs.splice(i, 0, { start: seq, end, pieces: [copy(buf, off, len)] });
      this.bytes += len;
      this.pieces++;
      return true;
    }
    // At most one new piece before each overlapped run and one after the last.
    if (this.pieces + (j - i) + 1 > MAX_PIECES) return false;
    const base = runs[i];
    if (seqLt(seq, base.start)) {
      base.pieces.unshift(copy(buf, off, seqDiff(base.start, seq)));
      this.took(seqDiff(base.start, seq));
      base.start = seq;
    }
    for (let k = i + 1; k < j; k++) {
      const next = runs[k];
      // the hole between base and next lies inside [seq, end)
      const gap = seqDiff(next.start, base.end);
      if (gap > 0) {
        base.pieces.push(copy(buf, off + seqDiff(base.end, seq), gap));
        this.took(gap);
      }
      for (const p of next.pieces) base.pieces.push(p);
      base.end = next.end;
    }
    if (seqGt(end, base.end)) {
      const tail = seqDiff(end, base.end);
      base.pieces.push(copy(buf, off + len - tail, tail));
      this.took(tail);
      base.end = end;
    }
    if (j - i > 1) runs.splice(i + 1, j - i - 1);
    return true;
  }

  /**
   * Hands the held bytes that continue sink.rcvNxt to the sink, in order. A run
   * leaves the store before its bytes go (an ACK sent from inside the sink
   * carries no block below its own ACK); each piece leaves the byte count just
   * before it is delivered, so the window stays exact throughout.
   */
  drain(sink: InOrderSink): void {
    const runs = this.runs;
    while (runs.length > 0 && seqLe(runs[0].start, sink.rcvNxt)) {
      const r = runs.shift()!;
      this.pieces -= r.pieces.length;
      // bytes the in-order segment already delivered are skipped
      let skip = seqDiff(sink.rcvNxt, r.start);
      for (const p of r.pieces) {
        this.bytes -= p.length;
        if (skip >= p.length) {
          skip -= p.length;
          continue;
        }
        sink.deliver(p, skip, p.length - skip);
        skip = 0;
      }
    }
  }

  /** SACK blocks into out as pairs, the latest segment's run first, then the others in order; returns how many. */
  fillSack(out: Uint32Array, max: number): number {
    const runs = this.runs;
    let first = -1;
    for (let i = 0; i < runs.length; i++) {
      if (seqLe(runs[i].start, this.recent) && seqLt(this.recent, runs[i].end)) {
        first = i;
        break;
      }
    }
    let k = 0;
    if (first >= 0) {
      out[0] = runs[first].start;
      out[1] = runs[first].end;
      k = 1;
    }
    for (let i = 0; i < runs.length && k < max; i++) {
      if (i === first) continue;
      out[2 * k] = runs[i].start;
      out[2 * k + 1] = runs[i].end;
      k++;
    }
    return k;
  }

  clear(): void {
    this.runs = [];
    this.bytes = 0;
    this.pieces = 0;
  }

  private append(run: Run, buf: Buffer, off: number, len: number, end: number): void {
    run.pieces.push(copy(buf, off, len));
    run.end = end;
    this.took(len);
  }

  private took(len: number): void {
    this.bytes += len;
    this.pieces++;
  }
}

/** The view's bytes are valid only during the call: keep a copy. */
function copy(buf: Buffer, off: number, len: number): Buffer {
  const c = Buffer.allocUnsafe(len);
  buf.copy(c, 0, off, off + len);
  return c;
}
