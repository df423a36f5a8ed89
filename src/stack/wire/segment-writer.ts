// Contract: writes one IPv4+TCP packet into a TX slot and returns its length.
// Options only as needed (Linux order); checksums computed over the slot; no
// allocation per call.
import { ACK, SYN, type OutSegment } from '../contracts.js';
import { checksum, pseudoSum4 } from './checksum.js';

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

export function writeTcpSegment(b: Buffer, src: number, dst: number, sport: number, dport: number, s: OutSegment): number {
  const t = 20;
  let p = t + 20;
  if (s.flags & SYN) {
    if (s.mss >= 0) {
      b[p] = 2; b[p + 1] = 4; b.writeUInt16BE(s.mss, p + 2); p += 4;
    }
    if (s.sackOk && s.tsVal >= 0) {
      b[p] = 4; b[p + 1] = 2; p += 2;
      p = writeTs(b, p, s, false);
    } else if (s.tsVal >= 0) {
      p = writeTs(b, p, s, true);
    } else if (s.sackOk) {
      b[p] = 1; b[p + 1] = 1; b[p + 2] = 4; b[p + 3] = 2; p += 4;
    }
    if (s.wscale >= 0) {
      b[p] = 1; b[p + 1] = 3; b[p + 2] = 3; b[p + 3] = s.wscale; p += 4;
    }
  } else {
    if (s.tsVal >= 0) p = writeTs(b, p, s, true);
    if (s.sackCount > 0) {
      b[p] = 1; b[p + 1] = 1; b[p + 2] = 5; b[p + 3] = 2 + 8 * s.sackCount; p += 4;
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
  b[t + 16] = 0; b[t + 17] = 0; b[t + 18] = 0; b[t + 19] = 0;
  if (s.payloadLength > 0) s.copyPayload(b, p);
  const tcpLen = hl + s.payloadLength;
  b.writeUInt16BE(checksum(b, t, tcpLen, pseudoSum4(src, dst, 6, tcpLen)), t + 16);
  writeIpv4Header(b, src, dst, 20 + tcpLen);
  return 20 + tcpLen;
}

function writeTs(b: Buffer, p: number, s: OutSegment, pad: boolean): number {
  if (pad) {
    b[p] = 1; b[p + 1] = 1; p += 2;
  }
  b[p] = 8; b[p + 1] = 10;
  b.writeUInt32BE(s.tsVal >>> 0, p + 2);
  b.writeUInt32BE(s.tsEcr >>> 0, p + 6);
  return p + 10;
}

export function writeTcpRst(b: Buffer, src: number, dst: number, sport: number, dport: number, seq: number, ack: number, flags: number): number {
  const t = 20;
  b.writeUInt16BE(sport, t);
  b.writeUInt16BE(dport, t + 2);
  b.writeUInt32BE(seq >>> 0, t + 4);
  b.writeUInt32BE(ack >>> 0, t + 8);
  b[t + 12] = 5 << 4;
  b[t + 13] = flags;
  b.writeUInt16BE(0, t + 14);
  b.writeUInt32BE(0, t + 16);
  b.writeUInt16BE(checksum(b, t, 20, pseudoSum4(src, dst, 6, 20)), t + 16);
  writeIpv4Header(b, src, dst, 40);
  return 40;
}
