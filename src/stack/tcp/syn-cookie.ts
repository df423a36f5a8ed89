// SYN cookies (RFC 4987 §3.6, after Linux's net/ipv4/syncookies.c): when the
// SYN backlog is full, a SYN is answered with a SYN-ACK whose ISN encodes what
// the connection needs, and no state is kept. The client's ACK (ack - 1 is the
// cookie) then proves it saw our SYN-ACK, and the connection is created from it.
//
// A pure codec: no I/O, the clock comes in as `now` (ms), nothing is allocated
// per call (the tuple words sit in a reused Uint32Array, the decoded options go
// into a caller's reused object).
//
// The ISN (32 bits) is  H ^ (parity << 31 | mssIndex << 28)  where
//   H = HalfSipHash-2-4(secret[counter]; tuple words, client ISN, counter)
//   counter = floor(now / periodMs), parity = counter & 1.
// On the ACK, for counter c in {now's counter, the one before}: x = cookie ^ H(c)
// must have its low 28 bits zero and its top bit equal to c & 1; bits 28-30 are
// the MSS index. A blind guess passes with probability 2 * 2^-29 = 2^-28.
// The index bits are not authenticated (nor are Linux's): flipping them needs
// the cookie, i.e. seeing our SYN-ACK, and only picks another MSS the client's
// own SYN could have named.
// Each counter value has its own random 64-bit key, made when the counter
// reaches it and dropped two periods later: a cookie is valid for one to two
// periods (64-128 s by default; a client answers within an RTT, or resends
// data within a few RTOs if its ACK was lost).
//
// Options a cookie cannot hold (window scale, SACK-permitted) ride in the low
// 6 bits of our SYN-ACK's tsVal when the SYN carried timestamps, as Linux does
// (cookie_init_timestamp): the ACK echoes them in tsEcr. Without timestamps the
// SYN-ACK offers neither, and the connection runs without them.
import { randomFillSync } from 'node:crypto';

/**
 * MSS values a cookie can name (3 bits), ascending; the SYN's MSS is rounded
 * down to the nearest. Chosen for what reaches a TUN gateway:
 *  - 536: the IPv4 default when the SYN has no MSS option (RFC 9293 §3.7.1);
 *  - 1220: IPv6 minimum MTU 1280 less 60;
 *  - 1360: tunnels and VPNs (WireGuard's 1420 MTU, IPv6 header);
 *  - 1440: PPPoE and IPv6 on Ethernet (1500 - 60);
 *  - 1460: IPv4 on Ethernet;
 *  - 8940: jumbo frames (9000 - 60; costs IPv4 0.2 %);
 *  - 16344: 16 KiB MTUs of virtual NICs and loopback-like links;
 *  - 65460: our default TUN MTU 65520 less 60 (IPv4 clients say 65480 and lose
 *    20 bytes of 65 k per segment): local clients keep their large segments.
 */
export const COOKIE_MSS = [536, 1220, 1360, 1440, 1460, 8940, 16344, 65460] as const;

/** Words of a tuple: IPv4 src, dst, ports = 3; IPv6 4 + 4 + 1 = 9. */
export const TUPLE_WORDS_V4 = 3;
export const TUPLE_WORDS_V6 = 9;

/** Low bits of our cookie SYN-ACK's tsVal that carry the options (Linux: TSBITS 6). */
export const TS_OPT_BITS = 6;
const TS_OPT_MASK = (1 << TS_OPT_BITS) - 1;
const TS_WSCALE_NONE = 0xf;
const TS_SACK = 0x10;

const HASH_MASK = 0x0fffffff;

/** What a valid cookie ACK tells about the connection it stands for. */
export interface CookieDecoded {
  /** The client's MSS, rounded down to a COOKIE_MSS value. */
  mss: number;
  /** The client's window-scale shift, -1 when not in use. */
  wscale: number;
  sackOk: boolean;
  /** The ACK carried timestamps (then wscale and SACK came back in its tsEcr). */
  tsOk: boolean;
}

export function newCookieDecoded(): CookieDecoded {
  return { mss: 536, wscale: -1, sackOk: false, tsOk: false };
}

/** The index of the largest COOKIE_MSS value not above mss (0 when mss is absent or smaller than all). */
export function mssIndex(mss: number): number {
  let i = COOKIE_MSS.length - 1;
  while (i > 0 && mss < COOKIE_MSS[i]) i--;
  return i;
}

/**
 * Our SYN-ACK's tsVal with the SYN's options in its low 6 bits: bits 0-3 the
 * client's window scale (15 = none), bit 4 SACK-permitted. Never ahead of the
 * clock it was cut from, so the connection's timestamps stay monotonic.
 */
export function encodeTsOptions(tsNow: number, wscale: number, sackOk: boolean): number {
  const o = (wscale >= 0 && wscale <= 14 ? wscale : TS_WSCALE_NONE) | (sackOk ? TS_SACK : 0);
  let ts = ((tsNow & ~TS_OPT_MASK) | o) >>> 0;
  if (((ts - tsNow) | 0) > 0) ts = (ts - (1 << TS_OPT_BITS)) >>> 0;
  return ts;
}

/** Decodes the options from an echoed tsEcr into out; false when the bits cannot be ours. */
export function decodeTsOptions(tsEcr: number, out: CookieDecoded): boolean {
  const o = tsEcr & TS_OPT_MASK;
  if (o > (TS_SACK | TS_WSCALE_NONE)) return false; // bit 5 (Linux's ECN) is never set by us
  const ws = o & 0xf;
  if (ws !== TS_WSCALE_NONE && ws > 14) return false;
  out.wscale = ws === TS_WSCALE_NONE ? -1 : ws;
  out.sackOk = (o & TS_SACK) !== 0;
  return true;
}

export interface SynCookieOptions {
  /** Length of one counter step, which is also how often the secret changes (ms). */
  periodMs: number;
  /** Fills the 2-word key of a new period; crypto random unless a test needs determinism. */
  random: (key: Uint32Array) => void;
}

export class SynCookies {
  /**
   * The connection's 4-tuple as 32-bit words, filled by setV4/setV6 (or by the
   * caller) before make/check. Addresses go in as words, not as the stack's
   * numeric ids: an IPv6 id can be freed and reused between SYN and ACK.
   */
  readonly tuple = new Uint32Array(TUPLE_WORDS_V6);
  private readonly periodMs: number;
  private readonly random: (key: Uint32Array) => void;
  /** Keys of two periods: slot counter & 1, words 2*slot and 2*slot+1. */
  private readonly keys = new Uint32Array(4);
  private readonly scratch = new Uint32Array(2);
  private readonly slotCounter = [-1, -1];

  constructor(opts: Partial<SynCookieOptions> = {}) {
    this.periodMs = opts.periodMs ?? 64_000;
    this.random = opts.random ?? ((k) => void randomFillSync(k));
  }

  /** IPv4: client address/port (the SYN's source), then the address/port it dialled. Returns the word count. */
  setV4(clientIp: number, serverIp: number, clientPort: number, serverPort: number): number {
    const w = this.tuple;
    w[0] = clientIp;
    w[1] = serverIp;
    w[2] = ((clientPort << 16) | serverPort) >>> 0;
    return TUPLE_WORDS_V4;
  }

  /** IPv6: the 16-byte addresses as they sit in the packet. Returns the word count. */
  setV6(b: Buffer, clientOff: number, serverOff: number, clientPort: number, serverPort: number): number {
    const w = this.tuple;
    for (let i = 0; i < 4; i++) {
      w[i] = b.readUInt32BE(clientOff + 4 * i);
      w[4 + i] = b.readUInt32BE(serverOff + 4 * i);
    }
    w[8] = ((clientPort << 16) | serverPort) >>> 0;
    return TUPLE_WORDS_V6;
  }

  /** The cookie ISN for a SYN with sequence number clientIsn and MSS option mss (-1 when absent). */
  make(words: number, clientIsn: number, mss: number, now: number): number {
    const c = this.counterAt(now);
    const h = this.hash(c, words, clientIsn >>> 0);
    return (h ^ (((c & 1) << 31) | (mssIndex(mss) << 28))) >>> 0;
  }

  /**
   * The MSS a cookie stands for, or -1 when it is not one of ours (wrong tuple,
   * client ISN or key, or older than the previous period).
   */
  check(words: number, clientIsn: number, cookie: number, now: number): number {
    const cur = this.counterAt(now);
    for (let c = cur; c >= cur - 1 && c >= 0; c--) {
      if (this.slotCounter[c & 1] !== c) continue;
      const x = (cookie ^ this.hash(c, words, clientIsn >>> 0)) >>> 0;
      if ((x & HASH_MASK) === 0 && x >>> 31 === (c & 1)) return COOKIE_MSS[(x >>> 28) & 7];
    }
    return -1;
  }

  /**
   * An ACK without a connection: is ack - 1 a cookie for seq - 1? Fills out with
   * the connection's options (from tsEcr when the ACK has timestamps).
   */
  checkAck(words: number, seq: number, ack: number, tsVal: number, tsEcr: number, now: number, out: CookieDecoded): boolean {
    const mss = this.check(words, (seq - 1) >>> 0, (ack - 1) >>> 0, now);
    if (mss < 0) return false;
    out.mss = mss;
    out.tsOk = tsVal >= 0;
    if (!out.tsOk) {
      out.wscale = -1;
      out.sackOk = false;
      return true;
    }
    return decodeTsOptions(tsEcr, out);
  }

  /** The counter for now, making the key of a new period (and dropping the one two back). */
  private counterAt(now: number): number {
    const c = Math.max(0, Math.floor(now / this.periodMs));
    const slot = c & 1;
    if (this.slotCounter[slot] < c) {
      this.random(this.scratch);
      this.keys[2 * slot] = this.scratch[0];
      this.keys[2 * slot + 1] = this.scratch[1];
      this.slotCounter[slot] = c;
    }
    return c;
  }

  /** HalfSipHash-2-4 (32-bit output) over tuple[0..words), clientIsn and the counter, keyed by the counter's key. */
  private hash(c: number, words: number, clientIsn: number): number {
    const k0 = this.keys[2 * (c & 1)];
    const k1 = this.keys[2 * (c & 1) + 1];
    let v0 = k0 | 0;
    let v1 = k1 | 0;
    let v2 = (0x6c796765 ^ k0) | 0;
    let v3 = (0x74656462 ^ k1) | 0;
    const n = words + 2;
    for (let i = 0; i <= n; i++) {
      // the message words, then the length block of the final round
      const m = i < words ? this.tuple[i] | 0 : i === words ? clientIsn | 0 : i === words + 1 ? c | 0 : (n * 4) << 24;
      v3 ^= m;
      for (let r = 0; r < 2; r++) {
        v0 = (v0 + v1) | 0;
        v1 = (v1 << 5) | (v1 >>> 27);
        v1 ^= v0;
        v0 = (v0 << 16) | (v0 >>> 16);
        v2 = (v2 + v3) | 0;
        v3 = (v3 << 8) | (v3 >>> 24);
        v3 ^= v2;
        v0 = (v0 + v3) | 0;
        v3 = (v3 << 7) | (v3 >>> 25);
        v3 ^= v0;
        v2 = (v2 + v1) | 0;
        v1 = (v1 << 13) | (v1 >>> 19);
        v1 ^= v2;
        v2 = (v2 << 16) | (v2 >>> 16);
      }
      v0 ^= m;
    }
    v2 ^= 0xff;
    for (let r = 0; r < 4; r++) {
      v0 = (v0 + v1) | 0;
      v1 = (v1 << 5) | (v1 >>> 27);
      v1 ^= v0;
      v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0;
      v3 = (v3 << 8) | (v3 >>> 24);
      v3 ^= v2;
      v0 = (v0 + v3) | 0;
      v3 = (v3 << 7) | (v3 >>> 25);
      v3 ^= v0;
      v2 = (v2 + v1) | 0;
      v1 = (v1 << 13) | (v1 >>> 19);
      v1 ^= v2;
      v2 = (v2 << 16) | (v2 >>> 16);
    }
    return (v1 ^ v3) >>> 0;
  }
}
