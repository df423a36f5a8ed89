// Fake IPs for per-host mode: a bounded two-way map between names and
// addresses of a pool (default 198.18.0.0/15). The same name keeps its address
// while the mapping lives; when the pool is full the least recently used
// mapping is recycled, never one whose address has live connections. The map
// can be saved and loaded so a restart does not break clients that cached an answer.
import { LRUCache } from 'lru-cache';
import { parseCidr, ipv4ToInt } from '../cidr.js';
import { ipv4ToString } from '../stack/wire/addr.js';
import { normalizeName } from './host-patterns.js';

export interface FakeIpPoolOptions {
  cidr: string;
  /** Addresses at the start of the pool that are never handed out (network, the TUN's own). */
  reserved: number;
  /** Most mappings held at once (also bounded by the pool's size). */
  maxMappings: number;
}

export const DEFAULT_FAKE_POOL: FakeIpPoolOptions = { cidr: '198.18.0.0/15', reserved: 4, maxMappings: 65_536 };

export class FakeIpPool {
  readonly base: number;
  readonly size: number;
  readonly capacity: number;
  private readonly byName: LRUCache<string, number>;
  private readonly byIp = new Map<number, string>();
  private next: number;
  private readonly reserved: number;

  constructor(
    opts: Partial<FakeIpPoolOptions> = {},
    /** True when the address has connections: such a mapping is never recycled. */
    private readonly isLive: (ip: number) => boolean = () => false,
  ) {
    const o = { ...DEFAULT_FAKE_POOL, ...opts };
    const c = parseCidr(o.cidr);
    if (!c || c.family !== 4) throw new Error(`fake pool: "${o.cidr}" is not an IPv4 CIDR`);
    this.base = ipv4ToInt(c.address);
    this.size = 2 ** (32 - c.prefix);
    if (this.size <= o.reserved + 1) throw new Error(`fake pool: ${o.cidr} is too small`);
    // the broadcast-like last address is skipped too
    this.capacity = Math.min(o.maxMappings, this.size - o.reserved - 1);
    this.next = this.reserved = o.reserved;
    // max is one above capacity so the cache never evicts on its own: recycling is ours.
    this.byName = new LRUCache<string, number>({ max: this.capacity + 1 });
  }

  get mappings(): number {
    return this.byName.size;
  }

  contains(ip: number): boolean {
    return ip - this.base >= 0 && ip - this.base < this.size;
  }

  /** The name behind a fake address, or undefined (stale or never handed out). */
  nameOf(ip: number): string | undefined {
    const name = this.byIp.get(ip);
    if (name !== undefined) this.byName.get(name); // a connection counts as use
    return name;
  }

  /** The address of a name, assigning one if needed; null when every mapping is live. */
  assign(name: string): number | null {
    const n = normalizeName(name);
    const have = this.byName.get(n);
    if (have !== undefined) return have;
    let ip: number;
    if (this.byName.size < this.capacity) {
      ip = this.freeAddress();
    } else {
      const victim = this.leastRecentIdle();
      if (victim === undefined) return null;
      ip = this.byName.peek(victim)!;
      this.byName.delete(victim);
      this.byIp.delete(ip);
    }
    this.byName.set(n, ip);
    this.byIp.set(ip, n);
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

  private leastRecentIdle(): string | undefined {
    for (const name of this.byName.rkeys()) {
      const ip = this.byName.peek(name);
      if (ip !== undefined && !this.isLive(ip)) return name;
    }
    return undefined;
  }

  /** Mappings from least to most recently used, for the state file. */
  save(): [string, string][] {
    const out: [string, string][] = [];
    for (const [n, ip] of this.byName.rentries()) out.push([n as string, ipv4ToString(ip as number)]);
    return out;
  }

  load(entries: readonly [string, string][]): void {
    for (const [name, ipText] of entries) {
      const ip = ipv4ToInt(ipText);
      if (!this.contains(ip) || this.byIp.has(ip) || this.byName.size >= this.capacity) continue;
      const n = normalizeName(name);
      this.byName.set(n, ip);
      this.byIp.set(ip, n);
    }
  }
}
