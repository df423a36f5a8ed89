// Contract: writes IPv4 packets that are not TCP segments into a TX slot and
// returns their length: UDP datagrams (RFC 768) and ICMP destination
// unreachable messages (RFC 792) quoting the datagram they answer.
import { checksum, pseudoSum4 } from './checksum.js';
import { writeIpv4Header } from './segment-writer.js';

export function writeUdpDatagram(
  b: Buffer, src: number, dst: number, sport: number, dport: number,
  payload: Buffer, off: number, len: number,
): number {
  const u = 20;
  const ulen = 8 + len;
  b.writeUInt16BE(sport, u);
  b.writeUInt16BE(dport, u + 2);
  b.writeUInt16BE(ulen, u + 4);
  b[u + 6] = 0;
  b[u + 7] = 0;
  payload.copy(b, u + 8, off, off + len);
  const ck = checksum(b, u, ulen, pseudoSum4(src, dst, 17, ulen));
  b.writeUInt16BE(ck === 0 ? 0xffff : ck, u + 6); // 0 means "no checksum" in UDP
  writeIpv4Header(b, src, dst, 20 + ulen, 17);
  return 20 + ulen;
}

export const ICMP_PORT_UNREACHABLE = 3;
export const ICMP_HOST_UNREACHABLE = 1;

/**
 * ICMP type 3 from `from` to the client, quoting a reconstructed header of the
 * client's datagram (IP header + first 8 bytes, RFC 792) so its kernel finds
 * the socket: src client → dst server, UDP ports as sent.
 */
export function writeIcmpUnreachable(
  b: Buffer, from: number, client: number, code: number,
  origSrc: number, origDst: number, origSport: number, origDport: number, origUdpLength: number,
): number {
  const i = 20;
  b[i] = 3;
  b[i + 1] = code;
  b[i + 2] = 0;
  b[i + 3] = 0;
  b.writeUInt32BE(0, i + 4);
  // the quoted datagram: its IPv4 header, then the UDP header
  const q = i + 8;
  b[q] = 0x45;
  b[q + 1] = 0;
  b.writeUInt16BE(20 + origUdpLength, q + 2);
  b.writeUInt32BE(0, q + 4);
  b[q + 8] = 64;
  b[q + 9] = 17;
  b[q + 10] = 0;
  b[q + 11] = 0;
  b.writeUInt32BE(origSrc, q + 12);
  b.writeUInt32BE(origDst, q + 16);
  b.writeUInt16BE(checksum(b, q, 20), q + 10);
  b.writeUInt16BE(origSport, q + 20);
  b.writeUInt16BE(origDport, q + 22);
  b.writeUInt16BE(origUdpLength, q + 24);
  b.writeUInt16BE(0, q + 26);
  const icmpLen = 8 + 28;
  b.writeUInt16BE(checksum(b, i, icmpLen), i + 2);
  writeIpv4Header(b, from, client, 20 + icmpLen, 1);
  return 20 + icmpLen;
}
