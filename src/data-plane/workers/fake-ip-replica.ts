// A stack worker's copy of the fake-IP mappings. The pool has one owner, the
// data plane's thread (gateway-dns.ts), which answers every DNS query: it
// sends each new mapping to every worker and waits for all to take it before
// the answer leaves (worker-pool.ts), so a client's first SYN to a fake IP,
// on whichever queue the kernel steers it, finds the name. Lookups of real
// addresses go to the owner too; names and pool geometry are answered here,
// without a round trip on the connection path.
import { ipv4ToInt, ipv4ToString, parseIpv4 } from '../../net/address.js';
import type { Endpoint } from '../../net/endpoint.js';
import { FakeIpPool } from '../../routing/fake-ip-pool.js';
import type { DataPlaneConfig } from '../config.js';
import type { DnsView } from '../dns-view.js';

/** What the replica asks the pool's owner. */
export interface PoolOwner {
  answer(query: Buffer, viaTcp: boolean): Promise<Buffer | null>;
  lookup(name: string, family: 4 | 6): Promise<string>;
  /** A connection to this fake ended: its hold time starts again (fire and forget). */
  used(ip: number): void;
}

export class FakeIpReplica implements DnsView {
  /** Geometry only (contains, toV6, fromV6): this copy never assigns. */
  private readonly geometry: FakeIpPool;
  private readonly names = new Map<number, string>();

  constructor(
    config: Pick<DataPlaneConfig, 'fakePool' | 'fakePool6' | 'ipv6'>,
    private readonly owner: PoolOwner,
  ) {
    this.geometry = new FakeIpPool({ cidr: config.fakePool, reserved: 4, cidr6: config.ipv6 ? config.fakePool6 : null, holdMs: 1 });
  }

  /** Mappings as the owner saved or sent them, [name, IPv4 text]; a later one for the same address replaces it (recycled). */
  apply(entries: readonly (readonly [string, string])[]): void {
    for (const [name, ipText] of entries) this.names.set(ipv4ToInt(ipText), name);
  }

  get size(): number {
    return this.names.size;
  }

  /** Every mapped address (IPv4 number, its IPv6 twin's text or null), for the liveness report. */
  *mapped(): IterableIterator<[number, string | null]> {
    for (const ip of this.names.keys()) yield [ip, this.geometry.toV6(ip)];
  }

  hostnameOf = (ip: number): string | undefined => (this.geometry.contains(ip) ? this.names.get(ip) : undefined);

  hostnameOf6 = (address: string): string | undefined => {
    const ip = this.geometry.fromV6(address);
    return ip === undefined ? undefined : this.names.get(ip);
  };

  hostnameOfEndpoint = (dst: Endpoint): string | undefined => {
    if (dst.family === 6) return this.hostnameOf6(dst.address);
    const ip = parseIpv4(dst.address);
    return ip === null ? undefined : this.hostnameOf(ip);
  };

  resolveTarget = async (dst: number, dstText?: string): Promise<string | null> => {
    if (dstText !== undefined && dstText.includes(':')) {
      const ip = this.geometry.fromV6(dstText);
      if (ip === undefined) return dstText;
      const name6 = this.names.get(ip);
      return name6 === undefined ? null : this.owner.lookup(name6, 6);
    }
    if (!this.geometry.contains(dst)) return ipv4ToString(dst);
    const name = this.names.get(dst);
    return name === undefined ? null : this.owner.lookup(name, 4);
  };

  dns = { answer: (q: Buffer, viaTcp = false) => this.owner.answer(q, viaTcp) };

  private poolIndex(a: string): number | undefined {
    const ip = parseIpv4(a);
    return ip !== null ? (this.geometry.contains(ip) ? ip : undefined) : this.geometry.fromV6(a);
  }

  proxy = {
    lookup: (name: string, family: 4 | 6 = 4) => this.owner.lookup(name, family),
    isFakeAddress: (a: string) => this.poolIndex(a) !== undefined,
    fakeAddressUsed: (a: string) => {
      const ip = this.poolIndex(a);
      if (ip !== undefined && this.names.has(ip)) this.owner.used(ip);
    },
  };
}
