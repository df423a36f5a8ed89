// The SOCKS5 UDP request header (RFC 1928 §7), which every datagram between
// the client and the proxy's UDP relay carries:
//
//   +----+------+------+----------+----------+----------+
//   |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//   +----+------+------+----------+----------+----------+
//   | 2  |  1   |  1   | Variable |    2     | Variable |
//
// ATYP 1: 4 bytes IPv4; 3: one length byte then a name; 4: 16 bytes IPv6.
// Going out, DST is where the relay sends DATA; coming back, it is the
// address and port DATA came from. Fragmentation (FRAG ≠ 0) is optional in
// §7 ("an implementation that does not support fragmentation MUST drop any
// datagram whose FRAG field is other than X'00'"): we never send fragments
// and drop any that arrive. A flow's header is built once (udpHeaderFor) and
// sent in front of each payload; replies are checked without allocating
// (udpHeaderLength, sameAddress); parseUdpHeader reads one whole (tests, logs).
import { isIP } from 'node:net';
import { ipv4ToString, ipv6Bytes, ipv6BytesToString, parseIpv4 } from '../../net/address.js';

export const ATYP_IPV4 = 1;
export const ATYP_DOMAIN = 3;
export const ATYP_IPV6 = 4;

/** Why a datagram from the relay is not one we take; counted and dropped. */
export type UdpHeaderProblem = 'short' | 'reserved' | 'fragment' | 'address-type' | 'empty-name';

export interface UdpHeader {
  /** An IPv4 or IPv6 address in text, or a name (ATYP 3). */
  host: string;
  port: number;
  atyp: typeof ATYP_IPV4 | typeof ATYP_DOMAIN | typeof ATYP_IPV6;
  /** Bytes before DATA. */
  length: number;
}

/**
 * The header for datagrams to `host` (an address, or a name the proxy
 * resolves) and `port`. Throws on a name longer than 255 bytes (the config's
 * names are at most 253).
 */
export function udpHeaderFor(host: string, port: number): Buffer {
  const family = isIP(host);
  let addr: Buffer;
  if (family === 4) {
    addr = Buffer.alloc(5);
    addr[0] = ATYP_IPV4;
    addr.writeUInt32BE(parseIpv4(host)! >>> 0, 1);
  } else if (family === 6) {
    addr = Buffer.alloc(17);
    addr[0] = ATYP_IPV6;
    addr.set(ipv6Bytes(host)!, 1);
  } else {
    const name = Buffer.from(host, 'utf8');
    if (name.length === 0 || name.length > 255) throw new RangeError(`a SOCKS5 name is 1 to 255 bytes: ${name.length}`);
    addr = Buffer.concat([Buffer.from([ATYP_DOMAIN, name.length]), name]);
  }
  const h = Buffer.alloc(3 + addr.length + 2);
  // RSV 0x0000, FRAG 0: a whole datagram
  addr.copy(h, 3);
  h.writeUInt16BE(port, 3 + addr.length);
  return h;
}

/** The header's length in `b` (DATA starts there), or why `b` is not a whole datagram we take. No allocation. */
export function udpHeaderLength(b: Buffer): number | UdpHeaderProblem {
  if (b.length < 4) return 'short';
  if (b[0] !== 0 || b[1] !== 0) return 'reserved';
  if (b[2] !== 0) return 'fragment';
  let end: number;
  switch (b[3]) {
    case ATYP_IPV4:
      end = 4 + 4;
      break;
    case ATYP_IPV6:
      end = 4 + 16;
      break;
    case ATYP_DOMAIN:
      if (b.length < 5) return 'short';
      if (b[4] === 0) return 'empty-name';
      end = 5 + b[4];
      break;
    default:
      return 'address-type';
  }
  return b.length < end + 2 ? 'short' : end + 2;
}

/** Reads one header: where DATA came from (or goes to), and where it starts. */
export function parseUdpHeader(b: Buffer): UdpHeader | UdpHeaderProblem {
  const length = udpHeaderLength(b);
  if (typeof length !== 'number') return length;
  const atyp = b[3] as UdpHeader['atyp'];
  const port = b.readUInt16BE(length - 2);
  const host = atyp === ATYP_IPV4 ? ipv4ToString(b.readUInt32BE(4)) : atyp === ATYP_IPV6 ? ipv6BytesToString(b, 4) : b.toString('utf8', 5, length - 2);
  return { host, port, atyp, length };
}

/**
 * True when the header that starts `b` (udpHeaderLength already said it is
 * whole, `length` bytes) names the same address and port as `header`: a
 * reply from the destination a flow sends to. An IPv4 source written as an
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) is the same.
 */
export function sameAddress(b: Buffer, length: number, header: Buffer): boolean {
  if (length === header.length && b.compare(header, 3, header.length, 3, length) === 0) return true;
  if (header[3] !== ATYP_IPV4 || b[3] !== ATYP_IPV6 || length !== 22) return false;
  for (let i = 4; i < 14; i++) if (b[i] !== 0) return false;
  return b[14] === 0xff && b[15] === 0xff && b.compare(header, 4, 10, 16, 22) === 0;
}
