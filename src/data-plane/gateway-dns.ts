// The gateway's DNS and its fake-IP pool, for every mode that answers DNS
// (per-host, route-all's DNS hijack, run): the answers, the stack's and the
// proxy core's view of fake IPs (hostname of a fake, real address to dial),
// and the mappings saved for the next run (a client may have cached an
// answer across a restart).
import { Resolver } from 'node:dns/promises';
import { ipv4ToString, parseIpv4 } from '../stack/wire/addr.js';
import { FakeIpPool } from '../routing/fake-ip-pool.js';
import { HostPatterns } from '../routing/host-patterns.js';
import { DnsOverride, type DnsFailure } from '../routing/dns-override.js';
import type { DataPlaneConfig } from './config.js';
import { prefixed } from './counters.js';

const FAKE_IP_SAVE_MS = 5000;

export type GatewayDns = ReturnType<typeof gatewayDns>;

export function gatewayDns(
  config: DataPlaneConfig,
  upstreams: string[],
  liveTo: (ip: number, ip6: string | null) => boolean,
  saveFakeIps: (data: unknown) => void,
  /** Every lookup that failed, forwarded for a client or made for a mapped name's connection: one log line each. */
  onFailure: (f: DnsFailure) => void = () => {},
) {
  const { localAddress, ipv6 } = config;
  const localAddress6 = config.localAddress6 ?? undefined;
  // IPv6 resolvers are unreachable without an IPv6 uplink (and asking them would loop through the TUN)
  if (config.localAddress6 === null) upstreams = upstreams.filter((u) => !u.replace(/^\[/, '').includes(':') || /^[^:]+:\d+$/.test(u));
  // one index space: a fake's IPv4 and IPv6 addresses are live if either has flows
  const pool: FakeIpPool = new FakeIpPool({ cidr: config.fakePool, reserved: 4, cidr6: ipv6 ? config.fakePool6 : null }, (ip) => liveTo(ip, pool.toV6(ip)));
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
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers(upstreams);
  if (localAddress || localAddress6) resolver.setLocalAddress(localAddress ?? '0.0.0.0', localAddress6 ?? '::0');
  // the real address of a mapped name: the family the client used first (it asked for that fake), then the
  // other; IPv4 only when IPv6 is off or has no direct path (route-all without an IPv6 uplink)
  const v6Direct = ipv6 && config.localAddress6 !== null;
  // a failure names each type it asked, in the order asked: c-ares's own message named only the last
  // (queryA on an IPv6 connection, queryAaaa on an IPv4 one), which read as if the labels were swapped
  const lookup = async (name: string, family: 4 | 6 = 4) => {
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
    const failure = { name, type: family === 6 ? 'AAAA' : 'A', resolvers: upstreams, reason: tried.join('; ') };
    onFailure(failure);
    throw new Error(`cannot resolve ${name} (${failure.reason}; resolvers ${upstreams.join(', ') || 'none'})`);
  };
  const dns = new DnsOverride({ hosts: new HostPatterns(config.hosts), pool, upstreams, timeoutMs: 2000, ttl: 10, localAddress, localAddress6, onFailure });
  return {
    dns,
    save,
    hostnameOf: (ip: number) => (pool.contains(ip) ? pool.nameOf(ip) : undefined),
    hostnameOf6: (address: string) => pool.nameOf6(address),
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
      isFakeAddress: (a: string) => {
        const ip = parseIpv4(a);
        return ip !== null ? pool.contains(ip) : pool.fromV6(a) !== undefined;
      },
    },
    counters: () => ({ ...prefixed('dns_', dns.counters), fake_mappings: pool.mappings, upstream_resolvers: upstreams.length }),
  };
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
