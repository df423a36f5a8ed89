// Contract: writes packets that are not TCP segments into a TX slot and
// returns their length, for either family: UDP datagrams (RFC 768), ICMP
// (RFC 792) and ICMPv6 (RFC 4443) errors quoting the packet they answer, and
// echo replies. Addresses are numbers; IPv6 ids need the stack's Ip6Table.
import { checksum, pseudoSum } from './checksum.js';
import type { Ip6Table } from './ip6-table.js';
import { ipHeaderLength, writeIpHeader } from './segment-writer.js';

export function writeUdpDatagram(
  b: Buffer,
  src: number,
  dst: number,
  sport: number,
  dport: number,
  payload: Buffer,
  off: number,
  len: number,
  ip6: Ip6Table | null = null,
): number {
  const u = ipHeaderLength(src);
  const ulen = 8 + len;
  b.writeUInt16BE(sport, u);
  b.writeUInt16BE(dport, u + 2);
  b.writeUInt16BE(ulen, u + 4);
  b[u + 6] = 0;
  b[u + 7] = 0;
  payload.copy(b, u + 8, off, off + len);
  const ck = checksum(b, u, ulen, pseudoSum(src, dst, 17, ulen, ip6));
  b.writeUInt16BE(ck === 0 ? 0xffff : ck, u + 6); // 0 means "no checksum" in UDP
  return writeIpHeader(b, src, dst, ulen, 17, ip6);
}

/** ICMP (type, code) pairs per family for the errors the stack generates. */
export const ICMP4 = {
  unreachable: 3,
  netUnreachable: 0,
  hostUnreachable: 1,
  portUnreachable: 3,
  fragNeeded: 4,
  adminProhibited: 13,
  echoRequest: 8,
  echoReply: 0,
} as const;
export const ICMP6 = {
  unreachable: 1,
  noRoute: 0,
  adminProhibited: 1,
  addressUnreachable: 3,
  portUnreachable: 4,
  packetTooBig: 2,
  echoRequest: 128,
  echoReply: 129,
} as const;

/** How much of the offending packet an error quotes: IPv4 to 576 bytes in all, IPv6 to the 1280-byte minimum MTU. */
const QUOTE_MAX4 = 576 - 28;
const QUOTE_MAX6 = 1280 - 48;

/**
 * An ICMP error (IPv4 type 3, or an ICMPv6 error when the addresses are IPv6)
 * from `from` to `to`, with the 32-bit field after the checksum (unused, or the
 * MTU for "fragmentation needed" / "packet too big") and as much of the
 * offending packet as fits, so the receiver's kernel finds the socket.
 */
export function writeIcmpError(
  b: Buffer,
  from: number,
  to: number,
  type: number,
  code: number,
  rest: number,
  quote: Buffer,
  qoff: number,
  qlen: number,
  ip6: Ip6Table | null = null,
): number {
  const v6 = from >= 0x100000000;
  const i = ipHeaderLength(from);
  const n = Math.min(qlen, v6 ? QUOTE_MAX6 : QUOTE_MAX4);
  b[i] = type;
  b[i + 1] = code;
  b[i + 2] = 0;
  b[i + 3] = 0;
  b.writeUInt32BE(rest >>> 0, i + 4);
  quote.copy(b, i + 8, qoff, qoff + n);
  return finishIcmp(b, from, to, i, 8 + n, v6, ip6);
}

/**
 * An echo reply to an echo request: the same identifier, sequence and data
 * (RFC 792, RFC 4443 §4.2), from the address the request was sent to.
 */
export function writeEchoReply(b: Buffer, from: number, to: number, req: Buffer, off: number, len: number, ip6: Ip6Table | null = null): number {
  const v6 = from >= 0x100000000;
  const i = ipHeaderLength(from);
  req.copy(b, i, off, off + len);
  b[i] = v6 ? ICMP6.echoReply : ICMP4.echoReply;
  b[i + 1] = 0;
  return finishIcmp(b, from, to, i, len, v6, ip6);
}

function finishIcmp(b: Buffer, from: number, to: number, i: number, len: number, v6: boolean, ip6: Ip6Table | null): number {
  b[i + 2] = 0;
  b[i + 3] = 0;
  // ICMPv6 covers a pseudo-header (RFC 4443 §2.3); ICMP for IPv4 does not.
  b.writeUInt16BE(checksum(b, i, len, v6 ? pseudoSum(from, to, 58, len, ip6) : 0), i + 2);
  return writeIpHeader(b, from, to, len, v6 ? 58 : 1, ip6);
}

/**
 * Rebuilds the headers of a UDP datagram the client sent (client → server),
 * for an error that arrives after the datagram is gone (a port unreachable
 * from upstream). Returns the length written at b[0]; the scratch buffer must hold 48 bytes.
 */
export function writeQuotedUdpHeaders(b: Buffer, client: number, server: number, clientPort: number, serverPort: number, udpLength: number, ip6: Ip6Table | null): number {
  const h = ipHeaderLength(client);
  b.writeUInt16BE(clientPort, h);
  b.writeUInt16BE(serverPort, h + 2);
  b.writeUInt16BE(udpLength, h + 4);
  b.writeUInt16BE(0, h + 6);
  writeIpHeader(b, client, server, udpLength, 17, ip6);
  return h + 8; // only the first 8 bytes of the datagram are quoted
}

/** The same for a TCP SYN (client → server) whose upstream failed: ports and the client's ISN. */
export function writeQuotedTcpHeaders(b: Buffer, client: number, server: number, clientPort: number, serverPort: number, isn: number, ip6: Ip6Table | null): number {
  const h = ipHeaderLength(client);
  b.writeUInt16BE(clientPort, h);
  b.writeUInt16BE(serverPort, h + 2);
  b.writeUInt32BE(isn >>> 0, h + 4);
  writeIpHeader(b, client, server, 20, 6, ip6);
  return h + 8;
}
