// IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5) fragment reassembly, so a
// datagram the client's kernel fragmented on its way into the TUN (UDP over
// the MTU, DNS with EDNS, VPN-in-UDP) passes as over the kernel path.
// Bounded: datagrams in progress, bytes held in all (the oldest datagram is
// evicted past either), fragments per datagram, and a timeout (Linux:
// ipfrag_time 30 s, ip6frag_time 60 s). A fragment overlapping another
// abandons its datagram and, until that datagram's timeout, every later
// fragment of it (RFC 5722 §4; Linux does the same for IPv4); an exact
// duplicate is dropped alone (RFC 8200 §4.5). Every refusal is counted.
// A datagram is keyed by (source, destination, protocol for IPv4, id) and found
// through a numeric hash: no strings per fragment.
import { Drop, type DropCounters } from './drop-counters.js';
import type { StackCounters } from './stack-options.js';
import { checksum } from './wire/checksum.js';
import type { Ip6Table } from './wire/ip6-table.js';

export interface ReassemblyOptions {
  /** Datagrams in progress at once. */
  maxDatagrams: number;
  /** Payload bytes held in all. */
  maxBytes: number;
  timeout4Ms: number;
  timeout6Ms: number;
}

export const DEFAULT_REASSEMBLY: ReassemblyOptions = { maxDatagrams: 256, maxBytes: 4 << 20, timeout4Ms: 30_000, timeout6Ms: 60_000 };

/** Fragments one datagram may come in (a 64 KiB datagram over a 576-byte link is 120). */
const MAX_FRAGMENTS = 128;
/** Largest reassembled IPv4 packet, and IPv6 payload (no jumbograms). */
const MAX_IP_LENGTH = 65535;

class Datagram {
  /** Same-hash chain. */
  next: Datagram | null = null;
  /** Fragments sorted by offset: payload offsets, lengths and copies. */
  offs: number[] = [];
  bufs: Buffer[] = [];
  received = 0;
  /** Payload length, known once the last fragment came; -1 before. */
  total = -1;
  /** The first fragment's header (IPv4, with options) or unfragmentable part (IPv6); null until it came. */
  head: Buffer | null = null;
  /** IPv6: where in head the next-header byte naming the Fragment header sits, and the value to put there. */
  nextAt = 0;
  nextHeader = 0;
  /** Abandoned for an overlap: later fragments are dropped until the deadline. */
  dead = false;
  gone = false;
  /** Payload and header bytes held. */
  bytes = 0;
  constructor(
    readonly hash: number,
    readonly v6: boolean,
    readonly src: number,
    readonly dst: number,
    readonly proto: number,
    readonly id: number,
    readonly deadline: number,
  ) {}
}

export class IpReassembly {
  readonly opts: ReassemblyOptions;
  private readonly table = new Map<number, Datagram>();
  /** Datagrams per family in arrival order (their timeouts are in the same order); finished ones skipped lazily. */
  private readonly queues: [Datagram[], Datagram[]] = [[], []];
  private readonly heads = [0, 0];
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly ip6: Ip6Table,
    private readonly drops: DropCounters,
    private readonly counters: StackCounters,
    opts: Partial<ReassemblyOptions> = {},
  ) {
    this.opts = { ...DEFAULT_REASSEMBLY, ...opts };
  }

  /** Datagrams in progress (abandoned ones included until their timeout). */
  get size(): number {
    return this.count;
  }

  /**
   * One IPv4 fragment (the packet at b[off], header already validated, hl its
   * header length, tl its total length). Returns the reassembled packet when this
   * fragment completed it, else null (taken, or dropped and counted).
   */
  add4(b: Buffer, off: number, hl: number, tl: number, now: number): Buffer | null {
    const fo = (b[off + 6] << 8) | b[off + 7];
    const fragOff = (fo & 0x1fff) << 3;
    const more = (fo & 0x2000) !== 0;
    const len = tl - hl;
    if ((more && (len & 7) !== 0) || fragOff + len > MAX_IP_LENGTH - hl || (more && len === 0)) {
      this.drops.count(Drop.ipv4_fragment);
      return null;
    }
    const src = b.readUInt32BE(off + 12);
    const dst = b.readUInt32BE(off + 16);
    const proto = b[off + 9];
    const id = (b[off + 4] << 8) | b[off + 5];
    const d = this.find(false, src, dst, proto, id, now);
    if (d === null) return null;
    if (!this.insert(d, fragOff, len, more, b, off + hl, Drop.ipv4_fragment)) return null;
    if (fragOff === 0 && d.head === null) this.keepHead(d, b.subarray(off, off + hl));
    return this.complete(d);
  }

  /**
   * One IPv6 fragment: the packet at b[off], its Fragment header at fragAt, the
   * next-header byte naming it at nextAt, and the payload end. src/dst are the
   * stack's ids for the addresses (held while the datagram is in progress).
   */
  add6(b: Buffer, off: number, fragAt: number, nextAt: number, end: number, src: number, dst: number, now: number): Buffer | null {
    const fo = b.readUInt16BE(fragAt + 2);
    const fragOff = fo & 0xfff8;
    const more = (fo & 1) !== 0;
    const start = fragAt + 8;
    const len = end - start;
    const unfragLen = fragAt - off - 40;
    if ((more && (len & 7) !== 0) || unfragLen + fragOff + len > MAX_IP_LENGTH || (more && len === 0)) {
      this.drops.count(Drop.ipv6_fragment);
      return null;
    }
    const d = this.find(true, src, dst, 0, b.readUInt32BE(fragAt + 4), now);
    if (d === null) return null;
    if (!this.insert(d, fragOff, len, more, b, start, Drop.ipv6_fragment)) return null;
    if (fragOff === 0 && d.head === null) {
      // the unfragmentable part (header and extension headers before the Fragment header, RFC 8200 §4.5)
      this.keepHead(d, b.subarray(off, fragAt));
      d.nextAt = nextAt - off;
      d.nextHeader = b[fragAt];
    }
    return this.complete(d);
  }

  /** Drops datagrams past their timeout (O(1) per expired one). */
  expire(now: number): void {
    for (let f = 0; f < 2; f++) {
      for (let d = this.oldest(f); d !== undefined && now >= d.deadline; d = this.oldest(f)) {
        if (!d.dead) this.drops.count(Drop.frag_timeout);
        this.remove(d);
      }
    }
  }

  /** When expire() next has something to do: the oldest datagram's deadline of either family (Infinity: none). */
  nextDeadline(): number {
    return Math.min(this.oldest(0)?.deadline ?? Infinity, this.oldest(1)?.deadline ?? Infinity);
  }

  /** The datagram for this key, made if new (evicting the oldest when full); null when its fragments are refused. */
  private find(v6: boolean, src: number, dst: number, proto: number, id: number, now: number): Datagram | null {
    const h = hashKey(src, dst, proto, id);
    for (let d = this.table.get(h) ?? null; d !== null; d = d.next) {
      if (d.v6 === v6 && d.src === src && d.dst === dst && d.proto === proto && d.id === id) {
        if (!d.dead) return d;
        this.drops.count(Drop.frag_abandoned);
        return null;
      }
    }
    while (this.count >= this.opts.maxDatagrams && this.evictOldest());
    const d = new Datagram(h, v6, src, dst, proto, id, now + (v6 ? this.opts.timeout6Ms : this.opts.timeout4Ms));
    d.next = this.table.get(h) ?? null;
    this.table.set(h, d);
    this.queues[v6 ? 1 : 0].push(d);
    this.count++;
    if (v6) {
      this.ip6.acquire(src);
      this.ip6.acquire(dst);
    }
    return d;
  }

  /** Files one fragment's payload; false when refused (duplicate, overlap, too many: counted). */
  private insert(d: Datagram, fragOff: number, len: number, more: boolean, b: Buffer, start: number, malformed: number): boolean {
    const end = fragOff + len;
    // the last fragment fixes the length: nothing may lie beyond it, nor may another last disagree
    if (!more ? (d.total >= 0 && d.total !== end) || lastEnd(d) > end : d.total >= 0 && end > d.total) return this.abandon(d);
    const offs = d.offs;
    let i = offs.length;
    while (i > 0 && offs[i - 1] > fragOff) i--;
    // neighbours: the one before must end by fragOff, the one after start at or past end
    if (i > 0) {
      const pe = offs[i - 1] + d.bufs[i - 1].length;
      if (pe > fragOff) {
        if (offs[i - 1] === fragOff && pe === end) return this.duplicate();
        return this.abandon(d);
      }
    }
    if (i < offs.length && offs[i] < end) return this.abandon(d);
    if (offs.length >= MAX_FRAGMENTS) {
      this.drops.count(malformed);
      this.abandonQuietly(d);
      return false;
    }
    const copy = Buffer.allocUnsafe(len);
    b.copy(copy, 0, start, start + len);
    offs.splice(i, 0, fragOff);
    d.bufs.splice(i, 0, copy);
    d.received += len;
    if (!more) d.total = end;
    this.hold(d, len);
    this.counters.fragmentsIn++;
    return true;
  }

  private keepHead(d: Datagram, head: Buffer): void {
    d.head = Buffer.from(head);
    this.hold(d, head.length);
  }

  /** The whole packet once every fragment is in, with a header that says so; the datagram is let go. */
  private complete(d: Datagram): Buffer | null {
    if (d.total < 0 || d.received !== d.total || d.head === null) return null;
    const head = d.head;
    if (head.length + d.total > (d.v6 ? 40 + MAX_IP_LENGTH : MAX_IP_LENGTH)) {
      // the first fragment's header was longer than the others said: too big after all
      this.drops.count(d.v6 ? Drop.ipv6_fragment : Drop.ipv4_fragment);
      this.remove(d);
      return null;
    }
    const out = Buffer.allocUnsafe(head.length + d.total);
    head.copy(out, 0);
    for (let k = 0; k < d.offs.length; k++) d.bufs[k].copy(out, head.length + d.offs[k]);
    if (d.v6) {
      out.writeUInt16BE(head.length - 40 + d.total, 4);
      out[d.nextAt] = d.nextHeader;
    } else {
      out.writeUInt16BE(out.length, 2);
      out.writeUInt16BE(0, 6); // no more fragments, offset 0
      out.writeUInt16BE(0, 10);
      out.writeUInt16BE(checksum(out, 0, head.length), 10);
    }
    this.remove(d);
    this.counters.datagramsReassembled++;
    return out;
  }

  private duplicate(): boolean {
    this.drops.count(Drop.frag_duplicate);
    return false;
  }

  /** An overlap: the fragment is dropped, the datagram abandoned (kept, dead, to drop what else comes of it). */
  private abandon(d: Datagram): boolean {
    this.drops.count(Drop.frag_overlap);
    this.abandonQuietly(d);
    return false;
  }

  private abandonQuietly(d: Datagram): void {
    d.dead = true;
    this.bytes -= d.bytes;
    d.bytes = 0;
    d.offs = [];
    d.bufs = [];
    d.head = null;
  }

  private hold(d: Datagram, n: number): void {
    d.bytes += n;
    this.bytes += n;
    while (this.bytes > this.opts.maxBytes && this.evictOldest(d));
  }

  /** Evicts the oldest datagram of either family other than `keep`; false when there is none. */
  private evictOldest(keep: Datagram | null = null): boolean {
    const a = this.oldest(0, keep);
    const b = this.oldest(1, keep);
    const d = a === undefined ? b : b === undefined ? a : a.deadline - this.opts.timeout4Ms <= b.deadline - this.opts.timeout6Ms ? a : b;
    if (d === undefined) return false;
    if (!d.dead) this.drops.count(Drop.frag_evicted);
    this.remove(d);
    return true;
  }

  /** The oldest datagram of family f still held (skipping `skip`), dropping finished entries off the front. */
  private oldest(f: number, skip: Datagram | null = null): Datagram | undefined {
    const q = this.queues[f];
    while (this.heads[f] < q.length && q[this.heads[f]].gone) this.heads[f]++;
    if (this.heads[f] > 1024 && this.heads[f] * 2 > q.length) {
      this.queues[f] = q.slice(this.heads[f]);
      this.heads[f] = 0;
    }
    const live = this.queues[f];
    let i = this.heads[f];
    while (i < live.length && (live[i].gone || live[i] === skip)) i++;
    return live[i];
  }

  private remove(d: Datagram): void {
    if (d.gone) return;
    d.gone = true;
    this.count--;
    this.bytes -= d.bytes;
    d.bytes = 0;
    d.offs = [];
    d.bufs = [];
    d.head = null;
    const first = this.table.get(d.hash)!;
    if (first === d) {
      if (d.next === null) this.table.delete(d.hash);
      else this.table.set(d.hash, d.next);
    } else {
      let p = first;
      while (p.next !== d) p = p.next!;
      p.next = d.next;
    }
    if (d.v6) {
      this.ip6.release(d.src);
      this.ip6.release(d.dst);
    }
  }
}

/** Where the fragments held end (the highest end). */
function lastEnd(d: Datagram): number {
  const n = d.offs.length;
  return n === 0 ? 0 : d.offs[n - 1] + d.bufs[n - 1].length;
}

/** A 32-bit mix of the key (addresses may be IPv6 ids above 2^32). */
function hashKey(src: number, dst: number, proto: number, id: number): number {
  let h = Math.imul((src >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.floor(src / 0x100000000);
  h = Math.imul(h ^ (h >>> 13) ^ (dst >>> 0), 0xc2b2ae35) ^ Math.floor(dst / 0x100000000);
  h = Math.imul(h ^ (h >>> 16) ^ id, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ proto, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
