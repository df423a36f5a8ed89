// A set of CIDRs for rule-sets: only "is this address in any of them?", so
// the prefixes are turned into address ranges, sorted and merged, and a
// lookup is a binary search: 8 bytes per IPv4 range, 32 per IPv6 range, and
// about 17 steps for 100,000 ranges. (The inline rules' prefix trie answers a
// different question, which rules cover an address, and costs a node object
// per bit: docs/DECISIONS.md, "Rule-sets", has both measured.)
import type { CidrMatch } from './rule-types.js';

export class CidrSet {
  constructor(
    /** Merged IPv4 ranges: starts ascending, ends[i] >= starts[i], disjoint. */
    private readonly starts4: Uint32Array,
    private readonly ends4: Uint32Array,
    /** Merged IPv6 ranges, 8 words each: start (4 words, big-endian order), end (4 words). */
    private readonly ranges6: Uint32Array,
  ) {}

  static readonly EMPTY = new CidrSet(new Uint32Array(0), new Uint32Array(0), new Uint32Array(0));

  get size(): number {
    return this.starts4.length + this.ranges6.length / 8;
  }

  get byteSize(): number {
    return this.starts4.byteLength + this.ends4.byteLength + this.ranges6.byteLength;
  }

  /** 4 or 16 address bytes (addressBytes: IPv4-mapped IPv6 is already 4). */
  has(bytes: Uint8Array): boolean {
    if (bytes.length === 4) {
      const a = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
      const s = this.starts4;
      let lo = 0;
      let hi = s.length - 1;
      let at = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (s[mid] <= a) {
          at = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return at >= 0 && this.ends4[at] >= a;
    }
    const r = this.ranges6;
    const n = r.length >>> 3;
    if (n === 0) return false;
    const w = words6(bytes);
    let lo = 0;
    let hi = n - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compare6(r, mid * 8, w) <= 0) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return at >= 0 && compare6(r, at * 8 + 4, w) >= 0;
  }
}

/** One scratch for the address being looked up: lookups are synchronous. */
const W = new Uint32Array(4);

function words6(b: Uint8Array): Uint32Array {
  const w = W;
  for (let i = 0; i < 4; i++) w[i] = ((b[i * 4] << 24) | (b[i * 4 + 1] << 16) | (b[i * 4 + 2] << 8) | b[i * 4 + 3]) >>> 0;
  return w;
}

/** Sign of (r[at..at+4) - w), words compared as unsigned from the most significant. */
function compare6(r: Uint32Array, at: number, w: Uint32Array): number {
  for (let i = 0; i < 4; i++) {
    if (r[at + i] !== w[i]) return r[at + i] < w[i] ? -1 : 1;
  }
  return 0;
}

export class CidrSetBuilder {
  /** (start << 32) | end per IPv4 range: sorting these sorts by start. */
  private v4 = new BigUint64Array(1 << 8);
  private n4 = 0;
  private v6: bigint[][] = [];

  get size(): number {
    return this.n4 + this.v6.length;
  }

  add(c: Pick<CidrMatch, 'bytes' | 'prefix'>): void {
    if (c.bytes.length === 4) {
      this.add4(((c.bytes[0] << 24) | (c.bytes[1] << 16) | (c.bytes[2] << 8) | c.bytes[3]) >>> 0, c.prefix);
      return;
    }
    let start = 0n;
    for (const byte of c.bytes) start = (start << 8n) | BigInt(byte);
    const span = (1n << BigInt(128 - c.prefix)) - 1n;
    this.v6.push([start, start + span]);
  }

  /**
   * "a.b.c.d" or "a.b.c.d/n" without the general parser's allocations (a
   * list of 100,000 CIDRs is mostly these); false when the text is not one,
   * and then nothing was added.
   */
  addIpv4Text(text: string): boolean {
    let addr = 0;
    let octet = -1;
    let dots = 0;
    let i = 0;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x30 && c <= 0x39) {
        if (octet === 0) return false; // a leading zero: octal in some parsers, refused by ours
        octet = octet < 0 ? c - 0x30 : octet * 10 + (c - 0x30);
        if (octet > 255) return false;
      } else if (c === 0x2e) {
        if (octet < 0 || ++dots > 3) return false;
        addr = addr * 256 + octet;
        octet = -1;
      } else break;
    }
    if (octet < 0 || dots !== 3) return false;
    addr = addr * 256 + octet;
    let prefix = 32;
    if (i < text.length) {
      if (text.charCodeAt(i) !== 0x2f || i + 1 === text.length || text.length - i > 3) return false;
      prefix = 0;
      for (let k = i + 1; k < text.length; k++) {
        const c = text.charCodeAt(k);
        if (c < 0x30 || c > 0x39) return false;
        prefix = prefix * 10 + (c - 0x30);
      }
      if (prefix > 32) return false;
    }
    this.add4(prefix === 0 ? 0 : (addr - (addr % 2 ** (32 - prefix))) >>> 0, prefix);
    return true;
  }

  private add4(net: number, prefix: number): void {
    const span = prefix === 0 ? 0xffffffff : 2 ** (32 - prefix) - 1;
    if (this.n4 === this.v4.length) {
      const b = new BigUint64Array(this.v4.length * 2);
      b.set(this.v4);
      this.v4 = b;
    }
    this.v4[this.n4++] = (BigInt(net) << 32n) | BigInt(net + span);
  }

  build(): CidrSet {
    if (this.size === 0) return CidrSet.EMPTY;
    const sorted = this.v4.subarray(0, this.n4).sort();
    const starts: number[] = [];
    const ends: number[] = [];
    for (const packed of sorted) {
      const s = Number(packed >> 32n);
      const e = Number(packed & 0xffffffffn);
      const last = ends.length - 1;
      // overlapping or adjacent: one range (a set only answers membership)
      if (last >= 0 && s <= ends[last] + 1) ends[last] = Math.max(ends[last], e);
      else {
        starts.push(s);
        ends.push(e);
      }
    }
    const six = this.v6.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const merged: bigint[][] = [];
    for (const [s, e] of six) {
      const last = merged[merged.length - 1];
      if (last && s <= last[1] + 1n) last[1] = last[1] > e ? last[1] : e;
      else merged.push([s, e]);
    }
    const r6 = new Uint32Array(merged.length * 8);
    merged.forEach(([s, e], i) => {
      for (let k = 0; k < 4; k++) {
        r6[i * 8 + k] = Number((s >> BigInt(96 - 32 * k)) & 0xffffffffn);
        r6[i * 8 + 4 + k] = Number((e >> BigInt(96 - 32 * k)) & 0xffffffffn);
      }
    });
    return new CidrSet(Uint32Array.from(starts), Uint32Array.from(ends), r6);
  }
}
