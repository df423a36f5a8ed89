// Byte-level CIDR handling for the rule matcher (config parsing and the per-connection check).
//
// IPv4-mapped IPv6 (::ffff:a.b.c.d) is folded into IPv4 on both sides: an address becomes
// 4 bytes, and a CIDR inside ::ffff:0:0/96 becomes the IPv4 CIDR it denotes, so a dual-stack
// socket's mapped peer matches the IPv4 rules users write. A shorter IPv6 prefix that merely
// covers the mapped range (e.g. ::/0) stays IPv6 and does not match IPv4 addresses.
import { isIP } from 'node:net';
import type { CidrMatch } from './rule-types.js';

/** Parses "a.b.c.d/n", "x::y/n" or a bare address (a host route); host bits are masked off. */
export function cidrMatch(text: string): CidrMatch | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  // A zone id names an interface, not a network.
  if ((family !== 4 && family !== 6) || address.includes('%')) return null;
  let bytes = family === 4 ? parseV4(address) : parseV6(address);
  let max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  if (family === 6 && prefix >= 96 && isMapped(bytes)) {
    bytes = bytes.slice(12);
    prefix -= 96;
    max = 32;
  }
  return { family: max === 32 ? 4 : 6, bytes: maskBytes(bytes, prefix), prefix, text };
}

/** 4 bytes for IPv4 (and IPv4-mapped IPv6), 16 for IPv6, null for anything else. A zone id is ignored. */
export function addressBytes(address: string): Uint8Array | null {
  const family = isIP(address);
  if (family === 4) return parseV4(address);
  if (family !== 6) return null;
  const pct = address.indexOf('%');
  const b = parseV6(pct < 0 ? address : address.slice(0, pct));
  return isMapped(b) ? b.slice(12) : b;
}

export function cidrContains(c: CidrMatch, bytes: Uint8Array): boolean {
  const net = c.bytes;
  if (bytes.length !== net.length) return false;
  const whole = c.prefix >> 3;
  for (let i = 0; i < whole; i++) if (bytes[i] !== net[i]) return false;
  const rest = c.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[whole] & mask) === (net[whole] & mask);
}

function maskBytes(b: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(b.length);
  const whole = prefix >> 3;
  out.set(b.subarray(0, whole));
  const rest = prefix & 7;
  if (rest) out[whole] = b[whole] & ((0xff << (8 - rest)) & 0xff);
  return out;
}

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

// Both parsers expect text isIP() has already validated.
function parseV4(s: string): Uint8Array {
  const p = s.split('.');
  return Uint8Array.of(+p[0], +p[1], +p[2], +p[3]);
}

function parseV6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const res: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = parseV4(g);
        res.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        res.push(parseInt(g, 16));
      }
    }
    return res;
  };
  const dbl = s.indexOf('::');
  const head = groups(dbl < 0 ? s : s.slice(0, dbl));
  const tail = dbl < 0 ? [] : groups(s.slice(dbl + 2));
  const all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i] >> 8;
    out[2 * i + 1] = all[i] & 0xff;
  }
  return out;
}
