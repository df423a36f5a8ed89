// Contract: reset() validates an IPv4 header once (version, IHL, total length,
// header checksum); afterwards the getters cannot fail. Addresses are unsigned
// 32-bit numbers. One view per stack, re-pointed per packet (RFC 791 §3.1).
import { Drop } from '../drop-counters.js';
import { fold, sumWords } from './checksum.js';

export class Ipv4View {
  private b: Buffer = Buffer.alloc(0);
  private o = 0;
  private hl = 0;
  private tl = 0;

  reset(b: Buffer, off: number, len: number): number {
    if (len < 20) return Drop.ipv4_truncated;
    if (b[off] >> 4 !== 4) return Drop.ipv4_bad_version;
    const hl = (b[off] & 0x0f) << 2;
    if (hl < 20 || hl > len) return Drop.ipv4_bad_ihl;
    const tl = (b[off + 2] << 8) | b[off + 3];
    if (tl < hl || tl > len) return Drop.ipv4_bad_total_length;
    if (fold(sumWords(b, off, hl, 0)) !== 0xffff) return Drop.ipv4_bad_checksum;
    this.b = b;
    this.o = off;
    this.hl = hl;
    this.tl = tl;
    return 0;
  }
  get headerLength() {
    return this.hl;
  }
  get totalLength() {
    return this.tl;
  }
  get payloadOffset() {
    return this.o + this.hl;
  }
  get payloadLength() {
    return this.tl - this.hl;
  }
  get id() {
    return (this.b[this.o + 4] << 8) | this.b[this.o + 5];
  }
  /** MF set or a non-zero fragment offset. */
  get isFragment() {
    return (((this.b[this.o + 6] << 8) | this.b[this.o + 7]) & 0x3fff) !== 0;
  }
  get ttl() {
    return this.b[this.o + 8];
  }
  get protocol() {
    return this.b[this.o + 9];
  }
  get src() {
    return this.b.readUInt32BE(this.o + 12);
  }
  get dst() {
    return this.b.readUInt32BE(this.o + 16);
  }
}
