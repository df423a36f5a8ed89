// Contract: reset() validates a UDP header (RFC 768) against the IP payload:
// length field within bounds, checksum verified when present (0 = none, which
// only IPv4 allows: RFC 8200 §8.1). Afterwards the getters cannot fail.
import { Drop } from '../drop-counters.js';
import { fold, sumWords } from './checksum.js';

export const UDP_HEADER = 8;

export class UdpView {
  private b: Buffer = Buffer.alloc(0);
  private o = 0;
  private n = 0;

  /** addrSum: both addresses' pseudo-header share (see addressSum in tcp-view.ts); vouched: the kernel vouched for the checksum (offload), not summed. */
  reset(b: Buffer, off: number, len: number, addrSum: number, family: 4 | 6 = 4, vouched = false): number {
    if (len < UDP_HEADER) return Drop.udp_truncated;
    const ulen = (b[off + 4] << 8) | b[off + 5];
    if (ulen < UDP_HEADER || ulen > len) return Drop.udp_bad_length;
    const ck = (b[off + 6] << 8) | b[off + 7];
    if (vouched) {
      // a partial checksum (NEEDS_CSUM) or one the kernel verified (DATA_VALID)
    } else if (ck === 0 ? family === 6 : fold(sumWords(b, off, ulen, addrSum + 17 + ulen)) !== 0xffff) {
      return Drop.udp_bad_checksum;
    }
    this.b = b;
    this.o = off;
    this.n = ulen;
    return 0;
  }
  get srcPort() {
    return (this.b[this.o] << 8) | this.b[this.o + 1];
  }
  get dstPort() {
    return (this.b[this.o + 2] << 8) | this.b[this.o + 3];
  }
  get payloadOffset() {
    return this.o + UDP_HEADER;
  }
  get payloadLength() {
    return this.n - UDP_HEADER;
  }
}
