// Internet checksum (RFC 1071) over Buffers, the IPv4 pseudo-header, and
// incremental updates (RFC 1624). Sums are 32-bit accumulators folded at the end.

let wordsOf: ArrayBufferLike | null = null;
let words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/**
 * Adds the 16-bit big-endian words of buf[off, off+len) to sum (not folded).
 * Long 4-byte-aligned regions are summed as native (little-endian) 32-bit words
 * in two int accumulators, then folded and byte-swapped: the ones' complement
 * sum is byte-order independent (RFC 1071 §2B). Twice as fast on 64 KiB segments.
 */
export function sumWords(buf: Buffer, off: number, len: number, sum: number): number {
  const abs = buf.byteOffset + off;
  if (len >= 64 && (abs & 3) === 0) {
    if (buf.buffer !== wordsOf) {
      wordsOf = buf.buffer;
      words = new Uint32Array(wordsOf, 0, wordsOf.byteLength >>> 2);
    }
    const n = len >>> 2;
    let lo = 0;
    let hi = 0;
    for (let i = abs >>> 2, end = (abs >>> 2) + n; i < end; i++) {
      const w = words[i];
      lo += w & 0xffff;
      hi += w >>> 16;
    }
    const s = fold(lo + hi);
    sum += ((s & 0xff) << 8) | (s >>> 8);
    const done = n << 2;
    return sumWords16(buf, off + done, len - done, sum);
  }
  return sumWords16(buf, off, len, sum);
}

function sumWords16(buf: Buffer, off: number, len: number, sum: number): number {
  let i = off;
  const end = off + (len & ~1);
  // Two words per step keeps the accumulator well below 2^53 for any packet.
  for (; i + 4 <= end; i += 4) sum += ((buf[i] << 8) | buf[i + 1]) + ((buf[i + 2] << 8) | buf[i + 3]);
  if (i < end) sum += (buf[i] << 8) | buf[i + 1];
  if (len & 1) sum += buf[off + len - 1] << 8;
  return sum;
}

export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/** The checksum field value for the region (ones' complement of the folded sum). */
export function checksum(buf: Buffer, off: number, len: number, initial = 0): number {
  return ~fold(sumWords(buf, off, len, initial)) & 0xffff;
}

/** Sum of the IPv4 pseudo-header (RFC 9293 §3.1) for a transport segment. */
export function pseudoSum4(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/**
 * Pseudo-header sum for either family (RFC 9293 §3.1, RFC 8200 §8.1). Addresses
 * are numbers: IPv4 ones as they are, IPv6 ids resolved through the table.
 */
export function pseudoSum(src: number, dst: number, protocol: number, length: number, t: AddressSums | null): number {
  if (src < 0x100000000) return pseudoSum4(src, dst, protocol, length);
  return t!.sum(src) + t!.sum(dst) + (length >>> 16) + (length & 0xffff) + protocol;
}

/** What pseudoSum needs of the IPv6 address table. */
export interface AddressSums {
  sum(id: number): number;
}

/** RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit field changing from m to m2. */
export function updateChecksum16(hc: number, m: number, m2: number): number {
  return ~fold((~hc & 0xffff) + (~m & 0xffff) + (m2 & 0xffff)) & 0xffff;
}

export function updateChecksum32(hc: number, m: number, m2: number): number {
  return updateChecksum16(updateChecksum16(hc, m >>> 16, m2 >>> 16), m & 0xffff, m2 & 0xffff);
}
