// Fake IPs for per-host mode: a bounded two-way map between names and
// addresses of a pool (default 198.18.0.0/15). The same name keeps its address
// while the mapping lives; when the pool is full the least recently used
// mapping is recycled, never one whose address has live connections, and
// never one used (answered, or connected to or from) within the hold time:
// a client that cached the answer past its TTL must not reach another name's
// server through it (issue 20). With every mapping held the pool is full and
// new names get no address (SERVFAIL), counted. The map can be saved and
// loaded so a restart does not break clients that cached an answer; loaded
// mappings are held from the start.
//
// IPv6 side (cidr6, default fc00::/18): one index space for both families. A
// name's IPv6 fake is the IPv6 prefix plus the same offset as its IPv4 fake,
// so one LRU, one liveness check and one state file serve both, and a name
// has exactly one pair of addresses. See docs/DECISIONS.md "## IPv6 routing".
import { isIP } from 'node:net';
import { parseCidr, ipv4ToInt, ipv6ToBigInt, bigIntToIpv6 } from '../cidr.js';
import { ipv4ToString } from '../net/address.js';
import { normalizeName } from './host-patterns.js';

export interface FakeIpPoolOptions {
  cidr: string;
  /** Addresses at the start of the pool that are never handed out (network, the TUN's own). */
  reserved: number;
  /** Most mappings held at once (also bounded by the pool's size). */
  maxMappings: number;
  /** The IPv6 pool (must hold at least as many addresses as the IPv4 one), or null for none. */
  cidr6: string | null;
  /** A mapping is not recycled until this long after its last answer and last connection, ms. */
  holdMs: number;
}

export const DEFAULT_FAKE_POOL6 = 'fc00::/18';
/** An hour: longer than programs keep answers they were given with a 10 s TTL (JVMs 30 s, browsers a minute, nscd's default an hour). */
export const DEFAULT_FAKE_IP_HOLD_MS = 3_600_000;
export const DEFAULT_FAKE_POOL: FakeIpPoolOptions = { cidr: '198.18.0.0/15', reserved: 4, maxMappings: 65_536, cidr6: DEFAULT_FAKE_POOL6, holdMs: DEFAULT_FAKE_IP_HOLD_MS };

export interface FakeIpPoolCounters {
  /** Mappings recycled for another name. */
  recycled: number;
  /** Names that got no address: every mapping live or held. */
  exhausted: number;
}

export class FakeIpPool {
  readonly base: number;
  readonly size: number;
  readonly capacity: number;
  /**
   * name -> address, in recency order (least recently used first: a use moves the name to the
   * end). A Map grows with the mappings; an LRUCache of max 65,537 preallocated 1.5 MB (two
   * arrays of 64 Ki slots in the heap, three typed arrays) in every data plane and worker
   * replica, used or not (docs/DECISIONS.md, "Idle RSS, lever by lever").
   */
  private readonly byName = new Map<string, number>();
  private readonly byIp = new Map<number, string>();
  /** Last answer or connection per address, ms. */
  private readonly lastUsed = new Map<number, number>();
  private readonly holdMs: number;
  readonly counters: FakeIpPoolCounters = { recycled: 0, exhausted: 0 };
  /** Told of each new mapping (a new name, or an address recycled for another): the data plane's workers keep copies. */
  onAssign?: (name: string, ip: number) => void;
  private next: number;
  private readonly reserved: number;
  /** First address of the IPv6 pool, or null. */
  readonly base6: bigint | null;
  readonly prefix6: number;

  constructor(
    opts: Partial<FakeIpPoolOptions> = {},
    /** True when the address has connections: such a mapping is never recycled. */
    private readonly isLive: (ip: number) => boolean = () => false,
    private readonly now: () => number = Date.now,
  ) {
    const o = { ...DEFAULT_FAKE_POOL, ...opts };
    this.holdMs = o.holdMs;
    const c = parseCidr(o.cidr);
    if (!c || c.family !== 4) throw new Error(`fake pool: "${o.cidr}" is not an IPv4 CIDR`);
    this.base = ipv4ToInt(c.address);
    this.size = 2 ** (32 - c.prefix);
    if (this.size <= o.reserved + 1) throw new Error(`fake pool: ${o.cidr} is too small`);
    // the broadcast-like last address is skipped too
    this.capacity = Math.min(o.maxMappings, this.size - o.reserved - 1);
    this.next = this.reserved = o.reserved;
    if (o.cidr6 === null) {
      this.base6 = null;
      this.prefix6 = 128;
    } else {
      const c6 = parseCidr(o.cidr6);
      if (!c6 || c6.family !== 6) throw new Error(`fake pool: "${o.cidr6}" is not an IPv6 CIDR`);
      if (2 ** (128 - c6.prefix) < this.size) throw new Error(`fake pool: ${o.cidr6} is smaller than ${o.cidr}`);
      this.base6 = ipv6ToBigInt(c6.address);
      this.prefix6 = c6.prefix;
    }
  }

  /** The IPv6 fake with the same offset as this IPv4 address of the pool (RFC 5952 text); null without an IPv6 pool. */
  toV6(ip4: number): string | null {
    if (this.base6 === null) return null;
    return bigIntToIpv6(this.base6 + BigInt((ip4 - this.base) >>> 0));
  }

  /** The IPv4 address of the pool with the same offset as this IPv6 address, or undefined when it is none of ours. */
  fromV6(text: string): number | undefined {
    if (this.base6 === null || isIP(text) !== 6) return undefined;
    const off = ipv6ToBigInt(text) - this.base6;
    if (off < 0n || off >= BigInt(this.size)) return undefined;
    return (this.base + Number(off)) >>> 0;
  }

  /** The IPv6 fake of a name, assigning one if needed (the same index as its IPv4 fake); null when every mapping is live or there is no IPv6 pool. */
  assign6(name: string): string | null {
    if (this.base6 === null) return null;
    const ip = this.assign(name);
    return ip === null ? null : this.toV6(ip);
  }

  /** The name behind an IPv6 fake address, or undefined. */
  nameOf6(text: string): string | undefined {
    const ip = this.fromV6(text);
    return ip === undefined ? undefined : this.nameOf(ip);
  }

  get mappings(): number {
    return this.byName.size;
  }

  contains(ip: number): boolean {
    return ip - this.base >= 0 && ip - this.base < this.size;
  }

  /** The name behind a fake address, or undefined (stale or never handed out). A lookup is a connection: it counts as use. */
  nameOf(ip: number): string | undefined {
    const name = this.byIp.get(ip);
    if (name !== undefined) this.use(name, ip);
    return name;
  }

  /** A connection to this address ended: its hold time starts again. */
  touch(ip: number): void {
    const name = this.byIp.get(ip);
    if (name !== undefined) this.use(name, ip);
  }

  private use(name: string, ip: number): void {
    // most recently used: to the end of the recency order
    if (this.byName.delete(name)) this.byName.set(name, ip);
    this.lastUsed.set(ip, this.now());
  }

  /** The address of a name, assigning one if needed; null when every mapping is live. */
  assign(name: string): number | null {
    const n = normalizeName(name);
    const have = this.byName.get(n);
    if (have !== undefined) {
      this.use(n, have);
      return have;
    }
    let ip: number;
    if (this.byName.size < this.capacity) {
      ip = this.freeAddress();
    } else {
      const victim = this.leastRecentIdle();
      if (victim === undefined) {
        this.counters.exhausted++;
        return null;
      }
      ip = this.byName.get(victim)!;
      this.byName.delete(victim);
      this.byIp.delete(ip);
      this.counters.recycled++;
    }
    this.byName.set(n, ip);
    this.byIp.set(ip, n);
    this.lastUsed.set(ip, this.now());
    this.onAssign?.(n, ip);
    return ip;
  }

  private freeAddress(): number {
    // Walk forward from where we stopped; addresses freed by recycling are reused in place.
    for (;;) {
      const ip = (this.base + this.next) >>> 0;
      this.next = this.next + 1 >= this.size - 1 ? this.reserved : this.next + 1;
      if (!this.byIp.has(ip)) return ip;
    }
  }

  /** The least recently used mapping that has no connection and is past its hold time. */
  private leastRecentIdle(): string | undefined {
    const now = this.now();
    for (const [name, ip] of this.byName) {
      if (this.isLive(ip)) continue;
      // recency order is use order: when this one is held, every later one is too
      if (now - (this.lastUsed.get(ip) ?? 0) < this.holdMs) return undefined;
      return name;
    }
    return undefined;
  }

  /** Mappings from least to most recently used, for the state file. */
  save(): [string, string][] {
    const out: [string, string][] = [];
    for (const [n, ip] of this.byName) out.push([n, ipv4ToString(ip)]);
    return out;
  }

  load(entries: readonly [string, string][]): void {
    for (const [name, ipText] of entries) {
      const ip = ipv4ToInt(ipText);
      if (!this.contains(ip) || this.byIp.has(ip) || this.byName.size >= this.capacity) continue;
      const n = normalizeName(name);
      this.byName.set(n, ip);
      this.byIp.set(ip, n);
      // a client may hold any of these answers from before the restart
      this.lastUsed.set(ip, this.now());
    }
  }
}
