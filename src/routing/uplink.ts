// Finds the uplink once at start: the main table's IPv4 default route and the
// source address the gateway binds its own upstream sockets to. Parsing is
// pure (tests feed it `ip -j` fixtures); discoverUplink() runs the commands.
import { ipExecSync, type IpExecSync } from './ip-exec.js';
import { ipv4ToInt } from '../cidr.js';

export interface Uplink {
  /** Interface of the default route, e.g. "eth0". */
  dev: string;
  /** Next hop; absent on point-to-point uplinks (ppp0, wg0). */
  gateway?: string;
  /** IPv4 source for the gateway's own sockets: prefsrc, else the dev's address for that route. */
  source: string;
}

export class UplinkError extends Error {
  override name = 'UplinkError';
}

interface JsonRoute {
  type?: string;
  dst?: string;
  gateway?: string;
  dev?: string;
  prefsrc?: string;
  metric?: number;
  flags?: string[];
  nexthops?: { gateway?: string; dev?: string }[];
}

interface JsonAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
  secondary?: boolean;
  deprecated?: boolean;
  tentative?: boolean;
}

/**
 * Picks the route the kernel itself uses for 0.0.0.0/0 in table main: unicast
 * defaults only (not unreachable/blackhole/prohibit), links up before linkdown,
 * then the lowest metric (first listed wins ties, as in the FIB).
 */
export function pickDefaultRoute(routesJson: string): { dev: string; gateway?: string; prefsrc?: string } {
  let routes: JsonRoute[];
  try {
    routes = JSON.parse(routesJson || '[]') as JsonRoute[];
  } catch {
    throw new UplinkError(`cannot parse \`ip -j -4 route show table main default\` output: ${routesJson.slice(0, 200)}`);
  }
  const usable = routes.filter((r) => (r.type === undefined || r.type === 'unicast') && (r.dev || r.nexthops));
  if (usable.length === 0) {
    const what = routes.length ? ` (only ${routes.map((r) => r.type ?? 'unusable').join(', ')} default routes)` : '';
    throw new UplinkError(
      `no IPv4 default route in the main table${what}: route-all needs an uplink to send the gateway's own traffic through; ` +
        'add one (e.g. `ip route add default via GATEWAY dev IFACE`) and start again',
    );
  }
  const down = (r: JsonRoute) => (r.flags ?? []).some((f) => f === 'linkdown' || f === 'dead');
  const best = [...usable].sort((a, b) => Number(down(a)) - Number(down(b)) || (a.metric ?? 0) - (b.metric ?? 0))[0];
  if (best.nexthops) {
    const hops = best.nexthops.map((h) => `${h.gateway ?? '?'} dev ${h.dev ?? '?'}`).join(', ');
    throw new UplinkError(
      `the IPv4 default route is multipath (${hops}); route-all needs one uplink for the gateway's own sockets: ` +
        'make a single-path default route the preferred one (lower metric)',
    );
  }
  return { dev: best.dev!, gateway: best.gateway, prefsrc: best.prefsrc };
}

function contains(addr: string, net: string, prefix: number): boolean {
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return (ipv4ToInt(addr) & mask) >>> 0 === (ipv4ToInt(net) & mask) >>> 0;
}

/**
 * The address the kernel would pick for traffic via `gateway` on this dev: a
 * usable global IPv4 address whose subnet holds the gateway, else the dev's
 * primary (first non-secondary) one. Taking the primary blindly is wrong on a
 * dev with two subnets whose default gateway sits in the second.
 */
export function pickSourceAddress(addrJson: string, dev: string, gateway?: string): string {
  let links: { ifname?: string; addr_info?: JsonAddrInfo[] }[];
  try {
    links = JSON.parse(addrJson || '[]') as typeof links;
  } catch {
    throw new UplinkError(`cannot parse \`ip -j -4 addr show dev ${dev}\` output: ${addrJson.slice(0, 200)}`);
  }
  const addrs = links.flatMap((l) => l.addr_info ?? []).filter((a) => a.family === 'inet' && a.local && a.scope !== 'host' && !a.tentative);
  const fresh = addrs.filter((a) => !a.deprecated);
  const pool = fresh.length ? fresh : addrs;
  const inGatewayNet = gateway ? pool.filter((a) => contains(gateway, a.local!, a.prefixlen ?? 32)) : [];
  const primaryFirst = (xs: JsonAddrInfo[]) => [...xs].sort((a, b) => Number(!!a.secondary) - Number(!!b.secondary));
  const chosen = primaryFirst(inGatewayNet)[0] ?? primaryFirst(pool)[0];
  if (!chosen) {
    throw new UplinkError(`uplink ${dev} has no IPv4 address to bind the gateway's own sockets to`);
  }
  return chosen.local!;
}

/** Runs `ip -j` (read-only) at most twice in the caller's network namespace; throws UplinkError with a clear reason. */
export function discoverUplink(exec: IpExecSync = ipExecSync): Uplink {
  const route = pickDefaultRoute(exec(['-j', '-4', 'route', 'show', 'table', 'main', 'default']).stdout);
  const source = route.prefsrc ?? pickSourceAddress(exec(['-j', '-4', 'addr', 'show', 'dev', route.dev]).stdout, route.dev, route.gateway);
  return route.gateway ? { dev: route.dev, gateway: route.gateway, source } : { dev: route.dev, source };
}

/** The IPv6 uplink: the main table's IPv6 default route and the address the gateway's own IPv6 sockets bind to. */
export interface Uplink6 {
  dev: string;
  /** Next hop, usually link-local (fe80::1, from router advertisements); absent on point-to-point links. */
  gateway?: string;
  /** A usable global (or ULA) IPv6 address of dev, the source of the gateway's own IPv6 sockets. */
  source: string;
}

interface JsonAddrInfo6 extends JsonAddrInfo {
  temporary?: boolean;
  dadfailed?: boolean;
  optimistic?: boolean;
}

/**
 * The IPv6 address the gateway binds its own IPv6 sockets to: scope global,
 * not tentative or failed, not deprecated (when any other is left), stable
 * before temporary (privacy addresses rotate away under long connections),
 * global unicast before ULA (fc00::/7 reaches less), first listed on ties.
 */
export function pickSourceAddress6(addrJson: string, dev: string): string | undefined {
  let links: { addr_info?: JsonAddrInfo6[] }[];
  try {
    links = JSON.parse(addrJson || '[]') as typeof links;
  } catch {
    throw new UplinkError(`cannot parse \`ip -j -6 addr show dev ${dev}\` output: ${addrJson.slice(0, 200)}`);
  }
  const addrs = links.flatMap((l) => l.addr_info ?? []).filter((a) => a.family === 'inet6' && a.local && a.scope === 'global' && !a.tentative && !a.dadfailed);
  const fresh = addrs.filter((a) => !a.deprecated);
  const pool = fresh.length ? fresh : addrs;
  const ula = (a: JsonAddrInfo6) => /^f[cd]/i.test(a.local!);
  const chosen = [...pool].sort((a, b) => Number(!!a.temporary) - Number(!!b.temporary) || Number(ula(a)) - Number(ula(b)))[0];
  return chosen?.local;
}

/**
 * The IPv6 uplink, or null when the main table has no usable IPv6 default route
 * (or its dev has no global address): route-all then still sends ::/0 into the
 * TUN, so nothing leaks around the gateway, and the gateway refuses IPv6
 * destinations itself (there is no direct path to reach them). Read-only `ip -j`.
 */
export function discoverUplink6(exec: IpExecSync = ipExecSync): Uplink6 | null {
  let route: { dev: string; gateway?: string; prefsrc?: string };
  try {
    route = pickDefaultRoute(exec(['-j', '-6', 'route', 'show', 'table', 'main', 'default']).stdout);
  } catch (e) {
    // none, or only unreachable ones: no IPv6 uplink; multipath is a real error, as for IPv4
    if (e instanceof UplinkError && /multipath/.test(e.message)) throw new UplinkError(e.message.replace('IPv4', 'IPv6'));
    if (e instanceof UplinkError) return null;
    throw e;
  }
  const source = route.prefsrc ?? pickSourceAddress6(exec(['-j', '-6', 'addr', 'show', 'dev', route.dev]).stdout, route.dev);
  if (source === undefined) return null;
  return route.gateway ? { dev: route.dev, gateway: route.gateway, source } : { dev: route.dev, source };
}

/** The network as the gateway follows it: both uplinks (null: none) and every address the host holds now. */
export interface NetworkView {
  uplink: Uplink | null;
  uplink6: Uplink6 | null;
  /** Addresses on any interface now, both families: a former uplink address keeps its bypass while it is one of them. */
  local: string[];
  /** Why there is no IPv4 uplink (no default route, multipath, no address), for the log and status. */
  why?: string;
}

interface JsonLink {
  ifname?: string;
  addr_info?: (JsonAddrInfo6 & { local?: string })[];
}

function parseLinks(text: string, what: string): JsonLink[] {
  try {
    return JSON.parse(text || '[]') as JsonLink[];
  } catch {
    throw new UplinkError(`cannot parse \`${what}\` output: ${text.slice(0, 200)}`);
  }
}

/**
 * The uplinks and the host's addresses, read again after the network changed:
 * four read-only `ip -j` calls. Unlike discoverUplink, no IPv4 uplink is an
 * answer (null, with the reason), not an error: a running gateway waits for
 * one to come back.
 */
export function discoverNetwork(exec: IpExecSync = ipExecSync, route6 = true): NetworkView {
  const links4 = parseLinks(exec(['-j', '-4', 'addr', 'show']).stdout, 'ip -j -4 addr show');
  const links6 = route6 ? parseLinks(exec(['-j', '-6', 'addr', 'show']).stdout, 'ip -j -6 addr show') : [];
  const local = [...links4, ...links6].flatMap((l) => (l.addr_info ?? []).map((a) => a.local).filter((a): a is string => !!a));
  const onDev = (links: JsonLink[], dev: string) => JSON.stringify(links.filter((l) => l.ifname === dev));
  let uplink: Uplink | null = null;
  let why: string | undefined;
  try {
    const r = pickDefaultRoute(exec(['-j', '-4', 'route', 'show', 'table', 'main', 'default']).stdout);
    const source = r.prefsrc ?? pickSourceAddress(onDev(links4, r.dev), r.dev, r.gateway);
    uplink = r.gateway ? { dev: r.dev, gateway: r.gateway, source } : { dev: r.dev, source };
  } catch (e) {
    if (!(e instanceof UplinkError)) throw e;
    why = e.message.replace(/: route-all needs .*$/s, '');
  }
  let uplink6: Uplink6 | null = null;
  if (route6) {
    try {
      const r = pickDefaultRoute(exec(['-j', '-6', 'route', 'show', 'table', 'main', 'default']).stdout);
      const source = r.prefsrc ?? pickSourceAddress6(onDev(links6, r.dev), r.dev);
      if (source !== undefined) uplink6 = r.gateway ? { dev: r.dev, gateway: r.gateway, source } : { dev: r.dev, source };
    } catch (e) {
      if (!(e instanceof UplinkError)) throw e; // none, multipath: no IPv6 uplink to follow
    }
  }
  return { uplink, uplink6, local, ...(why !== undefined ? { why } : {}) };
}
