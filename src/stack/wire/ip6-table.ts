// IPv6 addresses as numbers. Every layer of the stack keys flows, sessions and
// counters by a number: an IPv4 address is its uint32, an IPv6 address is an id
// >= 2^32 handed out here. So FlowTable, the per-server counts and the UDP
// sessions serve both families unchanged, and no packet builds a string or a
// BigInt. Ids are reference-counted: a flow holds its two addresses, a packet
// holds them while it is processed; an id whose count drops to zero is freed.
// Lookup is open addressing over typed arrays: no allocation per packet.
import { fold } from './checksum.js';
import { ip6GroupsToString, ipv4ToString } from '../../net/address.js';

/** The first IPv6 id; every IPv4 address is below it. */
export const IP6_ID_BASE = 2 ** 32;

export function isIp6Id(id: number): boolean {
  return id >= IP6_ID_BASE;
}

const EMPTY = 0;
const TOMBSTONE = -1;

export class Ip6Table {
  /** Per id slot: the address as 4 big-endian words. */
  private words: Uint32Array;
  private refs: Int32Array;
  /** Per id slot: the 16-bit ones' complement sum of the address (the pseudo-header part). */
  private sums: Uint32Array;
  /** Open-addressing index: slot+1, EMPTY or TOMBSTONE. */
  private index: Int32Array;
  private mask: number;
  private used = 0;
  private tombstones = 0;
  private free: number[] = [];
  private nextSlot = 0;
  private live = 0;

  constructor(initial = 256) {
    let cap = 16;
    while (cap < initial) cap <<= 1;
    this.words = new Uint32Array(cap * 4);
    this.refs = new Int32Array(cap);
    this.sums = new Uint32Array(cap);
    this.index = new Int32Array(cap * 2);
    this.mask = cap * 2 - 1;
  }

  /** Addresses currently held. */
  get size(): number {
    return this.live;
  }

  /** The id of the 16 address bytes at b[off], or -1 when none holds it. */
  lookup(b: Buffer, off: number): number {
    const w0 = b.readUInt32BE(off);
    const w1 = b.readUInt32BE(off + 4);
    const w2 = b.readUInt32BE(off + 8);
    const w3 = b.readUInt32BE(off + 12);
    const i = this.find(w0, w1, w2, w3);
    return i < 0 ? -1 : IP6_ID_BASE + this.index[i] - 1;
  }

  /** The id of the address at b[off], created if needed; the caller holds one reference. */
  intern(b: Buffer, off: number): number {
    const w0 = b.readUInt32BE(off);
    const w1 = b.readUInt32BE(off + 4);
    const w2 = b.readUInt32BE(off + 8);
    const w3 = b.readUInt32BE(off + 12);
    const i = this.find(w0, w1, w2, w3);
    if (i >= 0) {
      const slot = this.index[i] - 1;
      this.refs[slot]++;
      return IP6_ID_BASE + slot;
    }
    return IP6_ID_BASE + this.insert(w0, w1, w2, w3);
  }

  acquire(id: number): void {
    this.refs[id - IP6_ID_BASE]++;
  }

  release(id: number): void {
    const slot = id - IP6_ID_BASE;
    if (--this.refs[slot] > 0) return;
    const w = slot * 4;
    const i = this.find(this.words[w], this.words[w + 1], this.words[w + 2], this.words[w + 3]);
    if (i >= 0) {
      this.index[i] = TOMBSTONE;
      this.tombstones++;
      this.used--;
    }
    this.refs[slot] = 0;
    this.free.push(slot);
    this.live--;
  }

  /** Writes the address of id as 16 bytes at b[off]. */
  write(id: number, b: Buffer, off: number): void {
    const w = (id - IP6_ID_BASE) * 4;
    b.writeUInt32BE(this.words[w], off);
    b.writeUInt32BE(this.words[w + 1], off + 4);
    b.writeUInt32BE(this.words[w + 2], off + 8);
    b.writeUInt32BE(this.words[w + 3], off + 12);
  }

  /** The address's share of a transport pseudo-header sum (RFC 8200 §8.1), already folded. */
  sum(id: number): number {
    return this.sums[id - IP6_ID_BASE];
  }

  /** Word k (0..3, big-endian order) of the address. */
  word(id: number, k: number): number {
    return this.words[(id - IP6_ID_BASE) * 4 + k];
  }

  /** RFC 5952 text: per connection, never per packet. */
  toString(id: number): string {
    const w = (id - IP6_ID_BASE) * 4;
    const groups: number[] = [];
    for (let k = 0; k < 4; k++) groups.push(this.words[w + k] >>> 16, this.words[w + k] & 0xffff);
    return ip6GroupsToString(groups);
  }

  /** Text of any address number: an IPv4 uint32 or an id of this table. Per connection, never per packet. */
  text(ip: number): string {
    return isIp6Id(ip) ? this.toString(ip) : ipv4ToString(ip);
  }

  private hash(w0: number, w1: number, w2: number, w3: number): number {
    let h = Math.imul(w0 ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ w1, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16) ^ w2, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ w3, 0xc2b2ae35);
    return (h ^ (h >>> 16)) & this.mask;
  }

  /** Index position holding the address, or -1. */
  private find(w0: number, w1: number, w2: number, w3: number): number {
    const words = this.words;
    for (let i = this.hash(w0, w1, w2, w3), n = 0; n <= this.mask; i = (i + 1) & this.mask, n++) {
      const e = this.index[i];
      if (e === EMPTY) return -1;
      if (e === TOMBSTONE) continue;
      const w = (e - 1) * 4;
      if (words[w] === w0 && words[w + 1] === w1 && words[w + 2] === w2 && words[w + 3] === w3) return i;
    }
    return -1;
  }

  private insert(w0: number, w1: number, w2: number, w3: number): number {
    if ((this.used + this.tombstones + 1) * 2 > this.index.length) this.rehash();
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.nextSlot === this.refs.length) this.growSlots();
      slot = this.nextSlot++;
    }
    const w = slot * 4;
    this.words[w] = w0;
    this.words[w + 1] = w1;
    this.words[w + 2] = w2;
    this.words[w + 3] = w3;
    this.refs[slot] = 1;
    this.sums[slot] = fold((w0 >>> 16) + (w0 & 0xffff) + (w1 >>> 16) + (w1 & 0xffff) + (w2 >>> 16) + (w2 & 0xffff) + (w3 >>> 16) + (w3 & 0xffff));
    let i = this.hash(w0, w1, w2, w3);
    while (this.index[i] > 0) i = (i + 1) & this.mask;
    if (this.index[i] === TOMBSTONE) this.tombstones--;
    this.index[i] = slot + 1;
    this.used++;
    this.live++;
    return slot;
  }

  private growSlots(): void {
    const cap = this.refs.length * 2;
    const words = new Uint32Array(cap * 4);
    words.set(this.words);
    this.words = words;
    const refs = new Int32Array(cap);
    refs.set(this.refs);
    this.refs = refs;
    const sums = new Uint32Array(cap);
    sums.set(this.sums);
    this.sums = sums;
  }

  /** Rebuilds the index without tombstones, doubling it when it is more than a quarter full. */
  private rehash(): void {
    const size = this.used * 4 > this.index.length ? this.index.length * 2 : this.index.length;
    const old = this.index;
    this.index = new Int32Array(size);
    this.mask = size - 1;
    this.tombstones = 0;
    for (let j = 0; j < old.length; j++) {
      const e = old[j];
      if (e <= 0) continue;
      const w = (e - 1) * 4;
      let i = this.hash(this.words[w], this.words[w + 1], this.words[w + 2], this.words[w + 3]);
      while (this.index[i] !== EMPTY) i = (i + 1) & this.mask;
      this.index[i] = e;
    }
  }
}
