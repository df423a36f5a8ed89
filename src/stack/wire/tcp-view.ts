// Contract: reset() checks the data offset; tcpChecksumOk() verifies the
// segment against the IPv4 pseudo-header (RFC 9293 §3.1); fillSegment() copies
// header fields and options into the stack's one reused Segment.
import { Drop } from '../drop-counters.js';
import { fold, pseudoSum4, sumWords } from './checksum.js';

export const TCP_MIN = 20;

export class TcpView {
  b: Buffer = Buffer.alloc(0);
  o = 0;
  n = 0;
  reset(b: Buffer, off: number, len: number): number {
    if (len < TCP_MIN) return Drop.tcp_truncated;
    const h = (b[off + 12] >> 4) << 2;
    if (h < TCP_MIN || h > len) return Drop.tcp_bad_offset;
    this.b = b;
    this.o = off;
    this.n = len;
    return 0;
  }
  get srcPort() {
    return (this.b[this.o] << 8) | this.b[this.o + 1];
  }
  get dstPort() {
    return (this.b[this.o + 2] << 8) | this.b[this.o + 3];
  }
  get seq() {
    return this.b.readUInt32BE(this.o + 4);
  }
  get ack() {
    return this.b.readUInt32BE(this.o + 8);
  }
  get headerLength() {
    return (this.b[this.o + 12] >> 4) << 2;
  }
  get flags() {
    return this.b[this.o + 13];
  }
  get window() {
    return (this.b[this.o + 14] << 8) | this.b[this.o + 15];
  }
  get payloadOffset() {
    return this.o + this.headerLength;
  }
  get payloadLength() {
    return this.n - this.headerLength;
  }
}

export function tcpChecksumOk(b: Buffer, src: number, dst: number, off: number, len: number): boolean {
  return fold(sumWords(b, off, len, pseudoSum4(src, dst, 6, len))) === 0xffff;
}

/**
 * The sum of both addresses of a received packet straight from its header,
 * for the pseudo-header checksum of either family without interning anything.
 */
export function addressSum(b: Buffer, ipOff: number, family: 4 | 6): number {
  return family === 4 ? sumWords(b, ipOff + 12, 8, 0) : sumWords(b, ipOff + 8, 32, 0);
}

/** Transport checksum over b[off, off+len) given the address sum; true when it verifies. */
export function transportChecksumOk(b: Buffer, off: number, len: number, addrSum: number, protocol: number): boolean {
  return fold(sumWords(b, off, len, addrSum + protocol + (len >>> 16) + (len & 0xffff))) === 0xffff;
}
