// A set of domain entries for rule-sets: exact names, names with everything
// below them, only what is below, one label below. Built for lists of a
// million names: no JS string or object per entry, but one byte store, one
// flag byte and one hash per name, and an open-addressing table of indexes.
//
// The hash runs over a name from its last character to its first, so one
// pass over a hostname gives the hash of every suffix that starts at a label
// (www.a.example: example, a.example, www.a.example); each is one probe. A
// lookup costs the hostname's length plus one probe per label, whatever the
// set's size. Names are lower-case ASCII; a hostname with other characters
// simply matches nothing.

/** The name itself. */
export const EXACT = 1;
/** Every name strictly below it, at any depth ("." prefix; with EXACT: "+." or a domain_suffix). */
export const BELOW = 2;
/** Names exactly one label below it ("*." prefix). */
export const CHILD = 4;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const DOT = 0x2e;

/** Spreads FNV's state over the low bits, which the table's mask keeps (murmur3's finaliser). */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The hash a stored name gets: FNV-1a over its characters from last to first, mixed. */
export function nameHash(name: string): number {
  let h = FNV_OFFSET;
  for (let i = name.length - 1; i >= 0; i--) h = Math.imul(h ^ name.charCodeAt(i), FNV_PRIME);
  return mix(h);
}

function tableFor(count: number): Int32Array {
  let cap = 16;
  while (cap * 0.6 < count) cap *= 2;
  return new Int32Array(cap);
}

export class DomainSet {
  constructor(
    private readonly bytes: Uint8Array,
    /** Entry i's name is bytes[starts[i], starts[i + 1]). */
    private readonly starts: Uint32Array,
    private readonly hashes: Uint32Array,
    private readonly flags: Uint8Array,
    /** Entry index + 1 per slot; 0 is empty. */
    private readonly table: Int32Array,
    readonly size: number,
  ) {}

  static readonly EMPTY = new DomainSet(new Uint8Array(0), new Uint32Array(1), new Uint32Array(0), new Uint8Array(0), new Int32Array(16), 0);

  /** Bytes held, for the bench and `status`. */
  get byteSize(): number {
    return this.bytes.byteLength + this.starts.byteLength + this.hashes.byteLength + this.flags.byteLength + this.table.byteLength;
  }

  /** Does any entry cover this name (lower case, no trailing dot)? */
  has(name: string): boolean {
    if (this.size === 0) return false;
    const firstDot = name.indexOf('.');
    let h = FNV_OFFSET;
    for (let i = name.length - 1; i >= 0; i--) {
      h = Math.imul(h ^ name.charCodeAt(i), FNV_PRIME);
      if (i > 0 && name.charCodeAt(i - 1) !== DOT) continue;
      const f = this.find(mix(h), name, i);
      if (f === 0) continue;
      if (i === 0) return (f & EXACT) !== 0;
      if (f & BELOW) return true;
      if (f & CHILD && i - 1 === firstDot) return true;
    }
    return false;
  }

  /** The flags stored for name[from..], or 0. */
  private find(h: number, name: string, from: number): number {
    const mask = this.table.length - 1;
    const len = name.length - from;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const e = this.table[slot] - 1;
      if (e < 0) return 0;
      if (this.hashes[e] !== h) continue;
      const start = this.starts[e];
      if (this.starts[e + 1] - start !== len) continue;
      let same = true;
      for (let k = 0; k < len; k++) {
        if (this.bytes[start + k] !== name.charCodeAt(from + k)) {
          same = false;
          break;
        }
      }
      if (same) return this.flags[e];
    }
  }
}

/**
 * Collects entries (a repeated name ORs its flags) and builds the set. Names
 * must already be valid lower-case domain names (the parsers check them).
 */
export class DomainSetBuilder {
  private bytes = new Uint8Array(1 << 12);
  private used = 0;
  private starts = new Uint32Array(1 << 8);
  private hashes = new Uint32Array(1 << 8);
  private flags = new Uint8Array(1 << 8);
  private table: Int32Array = new Int32Array(1 << 8);
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(name: string, flags: number): void {
    const h = nameHash(name);
    const mask = this.table.length - 1;
    let slot = h & mask;
    for (; ; slot = (slot + 1) & mask) {
      const e = this.table[slot] - 1;
      if (e < 0) break;
      if (this.hashes[e] === h && this.equals(e, name)) {
        this.flags[e] |= flags;
        return;
      }
    }
    const e = this.count++;
    if (e + 1 >= this.starts.length) this.growEntries();
    this.ensureBytes(name.length);
    for (let k = 0; k < name.length; k++) this.bytes[this.used + k] = name.charCodeAt(k);
    this.starts[e] = this.used;
    this.used += name.length;
    this.starts[e + 1] = this.used;
    this.hashes[e] = h;
    this.flags[e] = flags;
    this.table[slot] = e + 1;
    if (this.count > this.table.length * 0.6) this.table = this.rehash(this.table.length * 2);
  }

  build(): DomainSet {
    if (this.count === 0) return DomainSet.EMPTY;
    const n = this.count;
    // trimmed copies: the builder's arrays grew by doubling
    const table = this.rehash(tableFor(n).length);
    return new DomainSet(this.bytes.slice(0, this.used), this.starts.slice(0, n + 1), this.hashes.slice(0, n), this.flags.slice(0, n), table, n);
  }

  private equals(e: number, name: string): boolean {
    const start = this.starts[e];
    if (this.starts[e + 1] - start !== name.length) return false;
    for (let k = 0; k < name.length; k++) if (this.bytes[start + k] !== name.charCodeAt(k)) return false;
    return true;
  }

  private rehash(cap: number): Int32Array {
    const table = new Int32Array(cap);
    const mask = cap - 1;
    for (let e = 0; e < this.count; e++) {
      let slot = this.hashes[e] & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = e + 1;
    }
    return table;
  }

  private growEntries(): void {
    const cap = this.starts.length * 2;
    const grow = <T extends Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.starts = grow(this.starts, (n) => new Uint32Array(n));
    this.hashes = grow(this.hashes, (n) => new Uint32Array(n));
    this.flags = grow(this.flags, (n) => new Uint8Array(n));
  }

  private ensureBytes(more: number): void {
    if (this.used + more <= this.bytes.length) return;
    let cap = this.bytes.length * 2;
    while (cap < this.used + more) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.bytes.subarray(0, this.used));
    this.bytes = b;
  }
}
