// What the supervisor changes on the system for each mode, journalled before
// each step (src/routing): route-all's policy routing here or in another
// namespace, per-host's pool routes and DNS override, the nftables
// interception of redirect and tproxy, and `tunsteer run`'s namespace. Each
// returns what the data plane must know of it, as plain data.
import { readFileSync } from 'node:fs';
import type { GatewaySettings } from '../config/settings.js';
import type { Logger } from '../logging/log.js';
import type { DataPlaneConfig } from '../data-plane/config.js';
import { ip as ipInNetns } from '../tun/ip-link.js';
import { bigIntToIpv6, ipv4ToInt, ipv6ToBigInt, parseCidr } from '../cidr.js';
import { ipv4ToString } from '../net/address.js';
import { dryRunRouteAll, ipv6OnNewLinks, kernelHasIpv6, upRouteAll } from '../routing/route-all.js';
import { renderPlan, type RoutePlanConfig } from '../routing/route-plan.js';
import { planPerHost, upPerHost } from '../routing/per-host.js';
import { systemResolvers as resolversOf } from '../routing/resolvers.js';
import { ipExecInNetns, ipExecSync } from '../routing/ip-exec.js';
import type { FollowOptions } from './follow-network.js';
import { upIntercept } from '../routing/intercept.js';
import { planIntercept } from '../routing/intercept-plan.js';
import type { StatusSnapshot } from './state/status-file.js';
import { dataPlaneUser } from './privileges.js';

/** IPv6 on a TUN needs an MTU of 1280 or more: below it the kernel turns IPv6 off on the link. */
const IPV6_MIN_MTU = 1280;

/** The TUN's addresses and the routing plan's inputs, worked out from the settings before anything changes. */
export interface Addressing {
  planCfg: RoutePlanConfig;
  /** The TUN can carry IPv6. */
  tunIpv6: boolean;
  /** The gateway's DNS address in per-host mode (the fake pool's third address). */
  dnsAddress: string;
  tunAddress: string;
  tunAddress6?: string;
  /** per-host with IPv6: the IPv6 pool is routed too. */
  perHost6: boolean;
}

export function addressing(s: GatewaySettings): Addressing {
  // IPv6 exists in this kernel: route-all takes ::/0 even with --ipv6 off (the stack refuses it), so nothing leaks
  const v6Kernel = kernelHasIpv6();
  // the TUN carries IPv6 only with a big enough MTU and where new links get IPv6 (not in a container that disables it);
  // run's namespace is new and has the kernel's defaults
  const tunIpv6 = v6Kernel && s.mtu >= IPV6_MIN_MTU && (s.ephemeralNetns === true || ipv6OnNewLinks(s.netns));
  const planCfg: RoutePlanConfig = {
    tunName: s.tunName,
    table: s.table,
    priorityBase: s.rulePriority,
    excludes: s.excludes,
    route6: v6Kernel,
    tunIpv6,
  };
  const poolBase = ipv4ToInt(parseCidr(s.fakePool)!.address);
  const dnsAddress = ipv4ToString((poolBase + 2) >>> 0);
  const tunAddress = s.mode === 'per-host' ? `${ipv4ToString((poolBase + 1) >>> 0)}/32` : s.tunAddress;
  // per-host: the IPv6 pool's second address (index 1, as the IPv4 TUN address); route-all: the ULA
  const perHost6 = s.mode === 'per-host' && s.ipv6 && tunIpv6;
  const tunAddress6 =
    s.mode === 'per-host' ? (perHost6 ? `${bigIntToIpv6(ipv6ToBigInt(parseCidr(s.fakePool6)!.address) + 1n)}/128` : undefined) : tunIpv6 ? s.tunAddress6 : undefined;
  return { planCfg, tunIpv6, dnsAddress, tunAddress, ...(tunAddress6 !== undefined ? { tunAddress6 } : {}), perHost6 };
}

/** --dry-run: the plan as commands, nothing changed. */
export function dryRunPlan(s: GatewaySettings, a: Addressing): string[] {
  if (s.mode === 'route-all') return dryRunRouteAll(a.planCfg).lines;
  // the data plane's uid is exempt from redirect
  if (s.mode === 'redirect' || s.mode === 'tproxy') return renderPlan(planIntercept(interceptConfig(s, dataPlaneUser(s)?.uid ?? 0)));
  return renderPlan(
    planPerHost({
      tunName: s.tunName,
      pool: s.fakePool,
      ...(a.perHost6 ? { pool6: s.fakePool6 } : {}),
      dnsAddress: a.dnsAddress,
      resolvConf: s.resolvConf,
      resolvConfText: readFileSync(s.resolvConf, 'utf8'),
    }),
  );
}

/** What the supervisor set up on the system, as the data plane needs to know it. */
export interface SystemSetup {
  uplink: StatusSnapshot['uplink'];
  plan: string[];
  localAddress?: string;
  /** The IPv6 uplink's address; null: route-all found no IPv6 uplink, so IPv6 destinations are refused. */
  localAddress6?: string | null;
  uplink6?: StatusSnapshot['uplink'] | null;
  dns?: DataPlaneConfig['dns'];
  intercept?: DataPlaneConfig['intercept'];
  /** What follow-network.ts needs to follow the uplink and the resolvers while the gateway runs. */
  follow?: Pick<FollowOptions, 'route' | 'resolv'>;
}

/** The mode's changes, applied; tunName: the TUN's (none in redirect and tproxy); uid: the data plane's. */
export function setUpSystem(s: GatewaySettings, a: Addressing, tunName: string | undefined, uid: number, log: Logger): SystemSetup {
  if (s.ephemeralNetns) return setupInNetns(s, tunName!, log, a.tunIpv6);
  if (s.netns) return setupRouteAllElsewhere(s, a.planCfg, log);
  if (s.mode === 'redirect' || s.mode === 'tproxy') return setupIntercept(s, uid, log);
  if (s.mode === 'route-all') return setupRouteAll(s, a.planCfg, log);
  return setupPerHost(s, a.dnsAddress, log, a.perHost6);
}

/**
 * The TUN lives in another network namespace (tunsteer run): everything there
 * goes into it, while this process and its upstream sockets stay outside, on
 * the outer namespace's routes, so no policy routing is needed. DNS to any
 * address:53 is answered here (forwarded to this namespace's resolvers).
 */
function setupInNetns(s: GatewaySettings, tunName: string, log: Logger, tunIpv6: boolean): SystemSetup {
  const ns = s.netns!;
  // an adopted TUN came with its routes (set inside, where we could not go)
  const plan = [`ip route add default dev ${tunName} (in ${ns})`];
  if (!s.adoptTun) {
    ipInNetns(['link', 'set', 'dev', 'lo', 'up'], ns);
    ipInNetns(['route', 'add', 'default', 'dev', tunName], ns);
    // IPv6 too; best effort: a new namespace has no other IPv6 route, so without these IPv6 is unreachable, never leaked
    if (tunIpv6) {
      try {
        ipInNetns(['addr', 'add', s.tunAddress6, 'dev', tunName, 'nodad'], ns);
        ipInNetns(['-6', 'route', 'add', 'default', 'dev', tunName], ns);
        plan.push(`ip -6 route add default dev ${tunName} (in ${ns})`);
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'no IPv6 in the namespace');
      }
    }
  }
  const upstreams = systemResolvers(s);
  if (upstreams.length === 0) log.warn({ resolvConf: s.resolvConf }, 'no nameserver to forward DNS to');
  return {
    uplink: { dev: 'outer namespace', source: '' },
    plan,
    dns: { address: '*', upstreams },
    follow: { resolv: { path: s.resolvConf, upstreams } },
  };
}

function setupRouteAll(s: GatewaySettings, planCfg: RoutePlanConfig, log: Logger): SystemSetup {
  const route = upRouteAll({ ...planCfg, stateDir: s.stateDir, log: (l) => log.warn(l) });
  const follow = { route: { journal: route.journal, planCfg, exec: ipExecSync, uplink: route.uplink, uplink6: route.uplink6, binds: true } };
  const base: SystemSetup = {
    uplink: route.uplink,
    uplink6: route.uplink6,
    plan: route.steps.map((st) => st.desc),
    localAddress: route.uplink.source,
    // ::/0 goes into the TUN: without an IPv6 uplink the gateway's own IPv6 sockets would loop, so they are refused (null)
    // with a TUN that carries no IPv6 (prohibit), there is no bypass rule either: refuse IPv6 likewise
    ...(planCfg.route6 ? { localAddress6: (planCfg.tunIpv6 !== false && route.uplink6?.source) || null } : {}),
    follow,
  };
  if (!s.dnsHijack) return base;
  const upstreams = systemResolvers(s);
  if (upstreams.length === 0) {
    log.warn({ resolvConf: s.resolvConf }, 'no nameserver to forward to: DNS is relayed, not hijacked');
    return base;
  }
  // DNS to any address:53 is answered by the gateway: names matching --host get
  // fake IPs (so rules see the name), the rest is forwarded to the system's resolvers.
  return { ...base, dns: { address: '*', upstreams }, follow: { ...follow, resolv: { path: s.resolvConf, upstreams } } };
}

/**
 * up --netns/--pid: the plan goes into another namespace (a container's),
 * journalled there for `down`; the gateway's sockets stay in this one, on its
 * routes, so they need no bypass and bind to no particular address. DNS sent
 * from there to any address:53 is answered here.
 */
function setupRouteAllElsewhere(s: GatewaySettings, planCfg: RoutePlanConfig, log: Logger): SystemSetup {
  const route = upRouteAll({ ...planCfg, stateDir: s.stateDir, netnsPath: s.netns, log: (l) => log.warn(l) });
  const upstreams = systemResolvers(s);
  if (upstreams.length === 0) log.warn({ resolvConf: s.resolvConf }, 'no nameserver to forward to: DNS is relayed, not hijacked');
  const dns = s.dnsHijack && upstreams.length > 0;
  const exec = ipExecInNetns(s.netns!);
  return {
    uplink: { ...route.uplink, dev: `${route.uplink.dev} (in ${s.netns})` },
    plan: route.steps.map((st) => `${st.desc} (in ${s.netns})`),
    ...(dns ? { dns: { address: '*', upstreams } } : {}),
    // the routes in that namespace follow its uplink; this process's sockets stay here, unbound
    follow: {
      route: { journal: route.journal, planCfg, exec, netnsPath: s.netns, uplink: route.uplink, uplink6: route.uplink6, binds: false },
      ...(dns ? { resolv: { path: s.resolvConf, upstreams } } : {}),
    },
  };
}

/** redirect, tproxy: nftables sends TCP to the data plane's listener (the data plane's own uid is exempt from redirect). */
function setupIntercept(s: GatewaySettings, uid: number, log: Logger): SystemSetup {
  const cfg = interceptConfig(s, uid);
  const r = upIntercept({ ...cfg, stateDir: s.stateDir, log: (l) => log.warn(l) });
  return { uplink: { dev: 'nftables', source: '' }, plan: r.steps.map((st) => st.desc), intercept: { kind: cfg.kind, port: cfg.port } };
}

function interceptConfig(s: GatewaySettings, uid: number) {
  return { kind: s.mode as 'redirect' | 'tproxy', port: s.interceptPort, uid, excludes: s.excludes, table: s.table, priority: s.rulePriority };
}

function setupPerHost(s: GatewaySettings, dnsAddress: string, log: Logger, route6: boolean): SystemSetup {
  const h = upPerHost({
    tunName: s.tunName,
    pool: s.fakePool,
    ...(route6 ? { pool6: s.fakePool6 } : {}),
    dnsAddress,
    resolvConf: s.resolvConf,
    stateDir: s.stateDir,
    log: (l) => log.warn(l),
  });
  return {
    uplink: { dev: s.tunName, source: dnsAddress },
    plan: h.steps.map((st) => st.desc),
    dns: { address: dnsAddress, upstreams: h.upstreams },
    // the override stays in place when something else rewrites resolv.conf; the newest original is kept for restore
    follow: { resolv: { path: s.resolvConf, upstreams: h.upstreams, perHost: { journal: h.journal, dnsAddress } } },
  };
}

/** The resolvers to forward to: resolv.conf's, or systemd-resolved's own behind its stub (routing/resolvers.ts). */
function systemResolvers(s: GatewaySettings): string[] {
  return resolversOf(s.resolvConf).upstreams;
}
