// The send buffer: bytes accepted from the app, from the first unacknowledged
// one (sndUna) on, kept as the app's own Buffers (by reference, no copy) until
// acknowledged. A segment's payload is copied straight from them into the TX
// slot; a cursor remembers where the last copy was, so the usual case (the
// next segment after the previous one) finds its chunk in O(1).
import { seqAdd, seqDiff } from '../seq.js';

/** Put in the place of an acknowledged chunk, so the app's Buffer is freed at once. */
const GONE = Buffer.alloc(0);

export class SendBuffer {
  private chunks: Buffer[] = [];
  /** Index of the first chunk still held, and the offset of headSeq in it. */
  private head = 0;
  private headOff = 0;
  /** Bytes held: from headSeq to the end. */
  queued = 0;
  /** Sequence number of the first byte held (sndUna while data is unacknowledged). */
  headSeq: number;
  /** Copy cursor: a chunk index >= head and its first byte's distance from headSeq (may be negative). */
  private curIdx = 0;
  private curPos = 0;

  constructor(firstSeq: number) {
    this.headSeq = firstSeq >>> 0;
  }

  /** Appends n bytes of data (kept by reference). */
  push(data: Buffer, n: number): void {
    if (n <= 0) return;
    this.chunks.push(n === data.length ? data : data.subarray(0, n));
    this.queued += n;
  }

  /** The first n bytes were acknowledged: they leave the front. */
  drop(n: number): void {
    if (n <= 0) return;
    this.queued -= n;
    this.headSeq = seqAdd(this.headSeq, n);
    this.curPos -= n;
    n += this.headOff;
    const c = this.chunks;
    while (this.head < c.length && n >= c[this.head].length) {
      n -= c[this.head].length;
      c[this.head++] = GONE;
    }
    this.headOff = n;
    if (this.curIdx < this.head) {
      this.curIdx = this.head;
      this.curPos = -this.headOff;
    }
    // Compact now and then, not per ACK: the array is only sliced when most of it is dead.
    if (this.head > 64 && this.head * 2 > c.length) {
      this.chunks = c.slice(this.head);
      this.curIdx -= this.head;
      this.head = 0;
    }
  }

  /** Copies len bytes from sequence number seq (within the buffer) into target at offset. */
  copyOut(seq: number, len: number, target: Buffer, offset: number): void {
    const c = this.chunks;
    const pos = seqDiff(seq, this.headSeq);
    let i = this.curIdx;
    let start = this.curPos;
    if (i < this.head || pos < start) {
      i = this.head;
      start = -this.headOff;
    }
    while (pos >= start + c[i].length) start += c[i++].length;
    this.curIdx = i;
    this.curPos = start;
    let skip = pos - start;
    while (len > 0) {
      const chunk = c[i++];
      const n = Math.min(len, chunk.length - skip);
      chunk.copy(target, offset, skip, skip + n);
      offset += n;
      len -= n;
      skip = 0;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = this.headOff = this.curIdx = this.curPos = 0;
  }
}
