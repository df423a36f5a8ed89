// Contract: writes one IPv4 or IPv6 TCP packet into a TX slot and returns its
// length. Options only as needed (Linux order); checksums computed over the
// slot; no allocation per call. Addresses are numbers: an IPv6 id (>= 2^32)
// needs the stack's Ip6Table, IPv4 callers may leave it out.
import { ACK, SYN, type OutSegment } from '../contracts.js';
import { checksum, pseudoSum } from './checksum.js';
import type { Ip6Table } from './ip6-table.js';

let ipId = 0;

/** A 20-byte IPv4 header at the start of the slot: DF, TTL 64, header checksum. */
export function writeIpv4Header(b: Buffer, src: number, dst: number, total: number, protocol = 6): void {
  b[0] = 0x45;
  b[1] = 0;
  b.writeUInt16BE(total, 2);
  b.writeUInt16BE((ipId = (ipId + 1) & 0xffff), 4);
  b[6] = 0x40; // DF
  b[7] = 0;
  b[8] = 64;
  b[9] = protocol;
  b[10] = 0;
  b[11] = 0;
  b.writeUInt32BE(src, 12);
  b.writeUInt32BE(dst, 16);
  b.writeUInt16BE(checksum(b, 0, 20), 10);
}

/** Length of the IP header in front of a transport header between these addresses. */
export function ipHeaderLength(src: number): number {
  return src < 0x100000000 ? 20 : 40;
}

/** A 40-byte IPv6 header at the start of the slot: hop limit 64, no flow label. */
export function writeIpv6Header(b: Buffer, src: number, dst: number, payloadLength: number, nextHeader: number, t: Ip6Table): void {
  b.writeUInt32BE(0x60000000, 0);
  b.writeUInt16BE(payloadLength, 4);
  b[6] = nextHeader;
  b[7] = 64;
  t.write(src, b, 8);
  t.write(dst, b, 24);
}

/** The IP header for either family, once the transport part behind it is written. */
export function writeIpHeader(b: Buffer, src: number, dst: number, transportLength: number, protocol: number, t: Ip6Table | null): number {
  if (src < 0x100000000) {
    writeIpv4Header(b, src, dst, 20 + transportLength, protocol);
    return 20 + transportLength;
  }
  writeIpv6Header(b, src, dst, transportLength, protocol, t!);
  return 40 + transportLength;
}

export function writeTcpSegment(b: Buffer, src: number, dst: number, sport: number, dport: number, s: OutSegment, ip6: Ip6Table | null = null): number {
  const t = ipHeaderLength(src);
  let p = t + 20;
  if (s.flags & SYN) {
    if (s.mss >= 0) {
      b[p] = 2;
      b[p + 1] = 4;
      b.writeUInt16BE(s.mss, p + 2);
      p += 4;
    }
    if (s.sackOk && s.tsVal >= 0) {
      b[p] = 4;
      b[p + 1] = 2;
      p += 2;
      p = writeTs(b, p, s, false);
    } else if (s.tsVal >= 0) {
      p = writeTs(b, p, s, true);
    } else if (s.sackOk) {
      b[p] = 1;
      b[p + 1] = 1;
      b[p + 2] = 4;
      b[p + 3] = 2;
      p += 4;
    }
    if (s.wscale >= 0) {
      b[p] = 1;
      b[p + 1] = 3;
      b[p + 2] = 3;
      b[p + 3] = s.wscale;
      p += 4;
    }
  } else {
    if (s.tsVal >= 0) p = writeTs(b, p, s, true);
    if (s.sackCount > 0) {
      b[p] = 1;
      b[p + 1] = 1;
      b[p + 2] = 5;
      b[p + 3] = 2 + 8 * s.sackCount;
      p += 4;
      for (let k = 0; k < s.sackCount; k++) {
        b.writeUInt32BE(s.sack[2 * k], p);
        b.writeUInt32BE(s.sack[2 * k + 1], p + 4);
        p += 8;
      }
    }
  }
  const hl = p - t;
  b.writeUInt16BE(sport, t);
  b.writeUInt16BE(dport, t + 2);
  b.writeUInt32BE(s.seq >>> 0, t + 4);
  b.writeUInt32BE(s.flags & ACK ? s.ack >>> 0 : 0, t + 8);
  b[t + 12] = (hl >> 2) << 4;
  b[t + 13] = s.flags;
  b.writeUInt16BE(s.window, t + 14);
  b[t + 16] = 0;
  b[t + 17] = 0;
  b[t + 18] = 0;
  b[t + 19] = 0;
  if (s.payloadLength > 0) s.copyPayload(b, p);
  const tcpLen = hl + s.payloadLength;
  b.writeUInt16BE(checksum(b, t, tcpLen, pseudoSum(src, dst, 6, tcpLen, ip6)), t + 16);
  return writeIpHeader(b, src, dst, tcpLen, 6, ip6);
}

function writeTs(b: Buffer, p: number, s: OutSegment, pad: boolean): number {
  if (pad) {
    b[p] = 1;
    b[p + 1] = 1;
    p += 2;
  }
  b[p] = 8;
  b[p + 1] = 10;
  b.writeUInt32BE(s.tsVal >>> 0, p + 2);
  b.writeUInt32BE(s.tsEcr >>> 0, p + 6);
  return p + 10;
}

export function writeTcpRst(b: Buffer, src: number, dst: number, sport: number, dport: number, seq: number, ack: number, flags: number, ip6: Ip6Table | null = null): number {
  const t = ipHeaderLength(src);
  b.writeUInt16BE(sport, t);
  b.writeUInt16BE(dport, t + 2);
  b.writeUInt32BE(seq >>> 0, t + 4);
  b.writeUInt32BE(ack >>> 0, t + 8);
  b[t + 12] = 5 << 4;
  b[t + 13] = flags;
  b.writeUInt16BE(0, t + 14);
  b.writeUInt32BE(0, t + 16);
  b.writeUInt16BE(checksum(b, t, 20, pseudoSum(src, dst, 6, 20, ip6)), t + 16);
  return writeIpHeader(b, src, dst, 20, 6, ip6);
}
