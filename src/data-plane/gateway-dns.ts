// The gateway's DNS and its fake-IP pool, for every mode that answers DNS
// (per-host, route-all's DNS hijack, run): the answers, the stack's and the
// proxy core's view of fake IPs (hostname of a fake, real address to dial),
// and the mappings saved for the next run (a client may have cached an
// answer across a restart).
import { Resolver } from 'node:dns/promises';
import { ipv4ToInt, ipv4ToString, parseIpv4 } from '../net/address.js';
import type { Endpoint } from '../net/endpoint.js';
import { FakeIpPool } from '../routing/fake-ip-pool.js';
import { HostPatterns } from '../routing/host-patterns.js';
import { DnsOverride, type DnsFailure } from '../routing/dns-override.js';
import type { DestinationCheck } from '../proxy/destination-check.js';
import type { DataPlaneConfig } from './config.js';
import { prefixed } from './counters.js';

const FAKE_IP_SAVE_MS = 5000;

export type GatewayDns = ReturnType<typeof gatewayDns>;

export function gatewayDns(
  config: DataPlaneConfig,
  upstreams: string[],
  liveTo: (ip: number, ip6: string | null) => boolean,
  saveFakeIps: (data: unknown) => void,
  destinations: DestinationCheck,
  /** Every lookup that failed, forwarded for a client or made for a mapped name's connection: one log line each. */
  onFailure: (f: DnsFailure) => void = () => {},
  /** Told of each new mapping and each answer learned for the destination check: stack workers keep copies (workers/worker-pool.ts). */
  news?: { mapped(name: string, ip: number): void; learned(name: string, addresses: string[], ttl: number): void },
) {
  const { ipv6 } = config;
  // one index space: a fake's IPv4 and IPv6 addresses are live if either has flows
  const pool: FakeIpPool = new FakeIpPool({ cidr: config.fakePool, reserved: 4, cidr6: ipv6 ? config.fakePool6 : null, holdMs: config.fakeIpHoldMs }, (ip) =>
    liveTo(ip, pool.toV6(ip)),
  );
  if (news) pool.onAssign = news.mapped;
  try {
    if (config.fakeIps !== undefined) pool.load(config.fakeIps as Parameters<FakeIpPool['load']>[0]);
  } catch {
    // unreadable: start empty
  }
  let last = '';
  const save = () => {
    const data = pool.save();
    const text = JSON.stringify(data);
    if (text === last) return;
    saveFakeIps(data);
    last = text;
  };
  setInterval(save, FAKE_IP_SAVE_MS).unref();
  // the resolver for mapped names' real addresses: its servers and source follow the network (update below);
  // a family without an uplink (null) is left out, as asking it unbound would loop through the TUN
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  const net = { localAddress: config.localAddress, localAddress6: config.localAddress6, upstreams };
  const reachable = () => net.upstreams.filter((u) => (isIpv6Server(u) ? net.localAddress6 !== null : net.localAddress !== null));
  const configure = () => {
    resolver.setServers(reachable());
    if (net.localAddress || net.localAddress6) resolver.setLocalAddress(net.localAddress || '0.0.0.0', net.localAddress6 || '::0');
  };
  configure();
  // the real address of a mapped name: the family the client used first (it asked for that fake), then the
  // other; IPv4 only when IPv6 is off or has no direct path (route-all without an IPv6 uplink)
  // a failure names each type it asked, in the order asked: c-ares's own message named only the last
  // (queryA on an IPv6 connection, queryAaaa on an IPv4 one), which read as if the labels were swapped
  const lookup = async (name: string, family: 4 | 6 = 4) => {
    const v6Direct = ipv6 && net.localAddress6 !== null;
    const order = !v6Direct ? [4] : family === 6 ? [6, 4] : [4, 6];
    const tried: string[] = [];
    for (const f of order) {
      try {
        const [a] = f === 6 ? await resolver.resolve6(name) : await resolver.resolve4(name);
        if (a) return a;
        tried.push(`${f === 6 ? 'AAAA' : 'A'}: no address`);
      } catch (e) {
        tried.push(`${f === 6 ? 'AAAA' : 'A'}: ${caresReason(e as NodeJS.ErrnoException)}`);
      }
    }
    const failure = { name, type: family === 6 ? 'AAAA' : 'A', resolvers: net.upstreams, reason: tried.join('; ') };
    onFailure(failure);
    throw new Error(`cannot resolve ${name} (${failure.reason}; resolvers ${net.upstreams.join(', ') || 'none'})`);
  };
  const dns = new DnsOverride({
    hosts: new HostPatterns(config.hosts),
    pool,
    upstreams,
    timeoutMs: 2000,
    ttl: 10,
    localAddress: config.localAddress,
    localAddress6: config.localAddress6,
    onAnswer: (name, addresses, ttl) => {
      destinations.learn(name, addresses, ttl);
      news?.learned(name, addresses, ttl);
    },
    onFailure,
  });
  const poolIndex = (a: string) => {
    const ip = parseIpv4(a);
    return ip !== null ? (pool.contains(ip) ? ip : undefined) : pool.fromV6(a);
  };
  return {
    dns,
    save,
    /** Every mapping, [name, IPv4 text], least recently used first (a new worker's copy). */
    savedMappings: () => pool.save(),
    /** The network moved: new source addresses (null: no uplink of that family), or new resolvers. */
    /** The resolvers forwarded to now. */
    get upstreams(): readonly string[] {
      return net.upstreams;
    },
    update(u: { localAddress?: string | null; localAddress6?: string | null; upstreams?: string[] }) {
      if (u.localAddress !== undefined) net.localAddress = dns.opts.localAddress = u.localAddress;
      if (u.localAddress6 !== undefined) net.localAddress6 = dns.opts.localAddress6 = u.localAddress6;
      if (u.upstreams !== undefined) net.upstreams = dns.opts.upstreams = u.upstreams;
      configure();
    },
    /** A reload: names matching these patterns get fake IPs from the next query on (mappings made stay). */
    setHosts(hosts: string[]) {
      dns.opts.hosts = new HostPatterns(hosts);
    },
    /** Every mapping now: the name, its fake IPv4 address and (IPv6 on) its twin. */
    mappings(): { host: string; ip: string; ip6?: string }[] {
      return pool.save().map(([host, ip]) => {
        const ip6 = pool.toV6(ipv4ToInt(ip));
        return { host, ip, ...(ip6 ? { ip6 } : {}) };
      });
    },
    hostnameOf: (ip: number) => (pool.contains(ip) ? pool.nameOf(ip) : undefined),
    hostnameOf6: (address: string) => pool.nameOf6(address),
    /** The same for a connection's destination endpoint. */
    hostnameOfEndpoint: (dst: Endpoint) => {
      if (dst.family === 6) return pool.nameOf6(dst.address);
      const ip = parseIpv4(dst.address);
      return ip !== null && pool.contains(ip) ? pool.nameOf(ip) : undefined;
    },
    resolveTarget: async (dst: number, dstText?: string) => {
      if (dstText !== undefined && dstText.includes(':')) {
        const ip = pool.fromV6(dstText);
        if (ip === undefined) return dstText;
        const name6 = pool.nameOf(ip);
        return name6 === undefined ? null : lookup(name6, 6);
      }
      if (!pool.contains(dst)) return ipv4ToString(dst);
      const name = pool.nameOf(dst);
      return name === undefined ? null : lookup(name);
    },
    proxy: {
      lookup,
      isFakeAddress: (a: string) => poolIndex(a) !== undefined,
      fakeAddressUsed: (a: string) => {
        const ip = poolIndex(a);
        if (ip !== undefined) pool.touch(ip);
      },
    },
    counters: () => ({
      ...prefixed('dns_', dns.counters),
      fake_mappings: pool.mappings,
      fake_capacity: pool.capacity,
      fake_recycled: pool.counters.recycled,
      fake_exhausted: pool.counters.exhausted,
      upstream_resolvers: net.upstreams.length,
    }),
  };
}

/** "2001:db8::53", "[2001:db8::53]:5353": an IPv6 resolver; "192.0.2.53", "192.0.2.53:5353": not. */
function isIpv6Server(u: string): boolean {
  return u.startsWith('[') || (u.includes(':') && !/^[^:]+:\d+$/.test(u));
}

/** c-ares's error codes in words. */
function caresReason(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ETIMEOUT':
      return 'timeout (no resolver answered)';
    case 'ECONNREFUSED':
      return 'refused (nothing listens there)';
    case 'ENOTFOUND':
      return 'no such name (NXDOMAIN)';
    case 'ENODATA':
      return 'no address of this type';
    case 'ESERVFAIL':
      return 'the resolver failed (SERVFAIL)';
    default:
      return e.code ?? e.message;
  }
}
