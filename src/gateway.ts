// `tunsteer up`, the supervisor: open the TUN, install the mode's system
// changes (journalled before each step), run the data plane (data-plane.ts)
// in a child process without root, and restore on every exit path: its own
// signals and errors, and the child's death (or restart it, --restart).
import { readFileSync, rmSync, mkdirSync } from 'node:fs';
import { UsageError, type UpArgs } from './cli-args.js';
import { pino } from 'pino';
import { createLogger, type Logger } from './log.js';
import { ip as ipInNetns } from './tun/ip-link.js';
import { bigIntToIpv6, ipv4ToInt, ipv6ToBigInt, parseCidr } from './cidr.js';
import { openTun } from './tun/open-tun.js';
import { adoptLinuxTun } from './tun/linux-tun.js';
import { FaultyTun, parseFaultSpec } from './tun/faulty-tun.js';
import type { TunDevice } from './tun/tun-device.js';
import { ipv4ToString } from './net/address.js';
import { dryRunRouteAll, ipv6OnNewLinks, kernelHasIpv6, upRouteAll } from './routing/route-all.js';
import { netnsAt, RouteJournal } from './routing/route-journal.js';
import { installExitHandlers, restoreFromJournal } from './routing/restore.js';
import type { RoutePlanConfig } from './routing/route-plan.js';
import { nameservers, planPerHost, upPerHost } from './routing/per-host.js';
import { renderPlan } from './routing/route-plan.js';
import { statusPath, writeStatus, type StatusSnapshot } from './status-file.js';
import { policyFromConfig } from './config/build-policy.js';
import { startDataPlane, type DataPlaneInit, type LiveStatus } from './data-plane.js';
import { loadFakeIps, saveFakeIps } from './fake-ip-file.js';
import { Supervisor } from './supervisor.js';
import { upIntercept } from './routing/intercept.js';
import { planIntercept } from './routing/intercept-plan.js';
import { resolveUser, type Identity } from './privileges.js';

let settleInProcess: (maxMs: number) => Promise<void> = async () => {};

/** For `tunsteer run`: once its program is gone, let the in-process data plane finish (and log) what is still open. */
export function settleDataPlane(maxMs: number): Promise<void> {
  return settleInProcess(maxMs);
}

/** IPv6 on a TUN needs an MTU of 1280 or more: below it the kernel turns IPv6 off on the link. */
const IPV6_MIN_MTU = 1280;

export async function runUp(args: UpArgs): Promise<number> {
  // IPv6 exists in this kernel: route-all takes ::/0 even with --ipv6 off (the stack refuses it), so nothing leaks
  const v6Kernel = kernelHasIpv6();
  // the TUN carries IPv6 only with a big enough MTU and where new links get IPv6 (not in a container that disables it);
  // run's namespace is new and has the kernel's defaults
  const tunIpv6 = v6Kernel && args.mtu >= IPV6_MIN_MTU && (args.ephemeralNetns === true || ipv6OnNewLinks(args.netns));
  const planCfg: RoutePlanConfig = {
    tunName: args.tunName,
    table: args.table,
    priorityBase: args.rulePriority,
    excludes: args.excludes,
    route6: v6Kernel,
    tunIpv6,
  };
  const pool = parseCidr(args.fakePool)!;
  const poolBase = ipv4ToInt(pool.address);
  const dnsAddress = ipv4ToString((poolBase + 2) >>> 0);
  const tunAddress = args.mode === 'per-host' ? `${ipv4ToString((poolBase + 1) >>> 0)}/32` : args.tunAddress;
  // per-host: the IPv6 pool's second address (index 1, as the IPv4 TUN address); route-all: the ULA
  const perHost6 = args.mode === 'per-host' && args.ipv6 && tunIpv6;
  const tunAddress6 = args.mode === 'per-host'
    ? perHost6 ? `${bigIntToIpv6(ipv6ToBigInt(parseCidr(args.fakePool6)!.address) + 1n)}/128` : undefined
    : tunIpv6 ? args.tunAddress6 : undefined;
  if (args.dryRun) {
    const lines =
      args.mode === 'route-all'
        ? dryRunRouteAll(planCfg).lines
        : args.mode === 'redirect' || args.mode === 'tproxy'
          ? renderPlan(planIntercept(interceptConfig(args, dataPlaneUser(args)?.uid ?? 0)))
          : renderPlan(
            planPerHost({ tunName: args.tunName, pool: args.fakePool, ...(perHost6 ? { pool6: args.fakePool6 } : {}), dnsAddress, resolvConf: args.resolvConf, resolvConfText: readFileSync(args.resolvConf, 'utf8') }),
          );
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  }
  const held = new RouteJournal(args.stateDir).holder();
  if (held !== null) {
    process.stderr.write(`tunsteer: a gateway (pid ${held}) already runs with state dir ${args.stateDir}\n`);
    return 1;
  }

  if (args.netns && !args.ephemeralNetns) {
    try {
      netnsAt(args.netns);
    } catch (e) {
      throw new UsageError(`--netns/--pid: ${args.netns} is not a network namespace (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  // secrets and upstreams are read before anything changes on the system
  const policy = policyFromConfig(args.config);
  // `tunsteer run` keeps its program's stdout clean: the gateway logs to stderr there
  const log = createLogger(args.logLevel, args.ephemeralNetns ? pino.destination({ dest: 2, sync: true }) : undefined);
  // the data plane runs as a child (crash-safe routing, least privilege) unless
  // its TUN lives in a namespace of its own (tunsteer run: nothing to restore
  // outside it) or the backend cannot hand its fd over (tuntap2)
  const intercepting = args.mode === 'redirect' || args.mode === 'tproxy';
  const split = !args.ephemeralNetns && (args.tunBackend === 'native' || intercepting);
  const dropTo = split ? dataPlaneUser(args) : null;
  rmSync(statusPath(args.stateDir), { force: true });
  // redirect and tproxy need no TUN: nftables brings the connections to a listener
  const tun = intercepting
    ? null
    : args.adoptTun
      ? adoptLinuxTun(args.adoptTun.fd, args.adoptTun.name, { mtu: args.mtu })
      : await openTun({ backend: args.tunBackend, name: args.tunName, mtu: args.mtu, addresses: [tunAddress, ...(tunAddress6 && !args.ephemeralNetns ? [tunAddress6] : [])], netns: args.netns });
  let stopDataPlane: (() => void) | null = null;
  let supervisor: Supervisor | null = null;
  installExitHandlers(
    () => {
      try {
        stopDataPlane?.();
      } finally {
        restoreFromJournal(args.stateDir, { ownOnly: true });
        rmSync(statusPath(args.stateDir), { force: true });
        tun?.close();
      }
    },
    {
      onError: (err, what) => log.fatal({ err, what }, what === 'restore' ? 'restoring routes failed' : 'gateway failed; routes restored'),
      // a child data plane is asked to stop and given time to reset its connections first
      onSignal: split ? (code) => (supervisor ? void supervisor.shutdown(code) : process.exit(code)) : undefined,
    },
  );

  const system = args.ephemeralNetns
    ? setupInNetns(args, tun!.name, log, tunIpv6)
    : args.netns
      ? setupRouteAllElsewhere(args, planCfg, log)
      : intercepting
        ? setupIntercept(args, dropTo?.uid ?? 0, log)
        : args.mode === 'route-all'
          ? setupRouteAll(args, planCfg, log)
          : setupPerHost(args, dnsAddress, log, perHost6);
  const init: DataPlaneInit = {
    args,
    tunAddress,
    localAddress: system.localAddress,
    ...(system.localAddress6 !== undefined ? { localAddress6: system.localAddress6 } : {}),
    // IPv6 relayed only when asked for and the TUN can carry it; else the stack refuses it and no AAAA fakes are given
    ipv6: args.ipv6 && tunIpv6,
    dns: system.dns,
    intercept: system.intercept,
    fakeIps: loadFakeIps(args.stateDir),
  };
  const startedAt = new Date().toISOString();
  const snapshot = (live: LiveStatus, extra: Partial<StatusSnapshot> = {}): StatusSnapshot => ({
    pid: process.pid,
    mode: args.mode,
    tun: tun ? { name: tun.name, mtu: tun.mtu, address: tunAddress } : { name: '', mtu: 0, address: '' },
    uplink: system.uplink,
    startedAt,
    updatedAt: new Date().toISOString(),
    ...live,
    ...extra,
  });
  if (split) {
    supervisor = new Supervisor({ args, init, tun, user: dropTo, log, snapshot });
    stopDataPlane = () => supervisor?.killNow();
    await supervisor.start();
  } else {
    const faults = parseFaultSpec(process.env.TUNSTEER_TEST_FAULTS);
    const dev: TunDevice | null = tun && faults ? new FaultyTun(tun, faults) : tun;
    if (faults) log.warn({ faults }, 'TEST FAULT INJECTION on the TUN path (TUNSTEER_TEST_FAULTS)');
    mkdirSync(args.stateDir, { recursive: true });
    const dp = await startDataPlane(init, dev, policy, {
      log,
      publish: (live) => writeStatus(args.stateDir, snapshot(live)),
      saveFakeIps: (data) => saveFakeIps(args.stateDir, data),
    });
    stopDataPlane = () => dp.stop();
    settleInProcess = (ms) => dp.settle(ms);
  }
  log.info({ mode: args.mode, tun: tun?.name, mtu: tun?.mtu, uplink: system.uplink, ...(system.uplink6 !== undefined ? { uplink6: system.uplink6 } : {}), ipv6: args.ipv6, plan: system.plan }, 'gateway up');
  return -1;
}

/** What the supervisor set up on the system, as the data plane needs to know it. */
interface SystemSetup {
  uplink: StatusSnapshot['uplink'];
  plan: string[];
  localAddress?: string;
  /** The IPv6 uplink's address; null: route-all found no IPv6 uplink, so IPv6 destinations are refused. */
  localAddress6?: string | null;
  uplink6?: StatusSnapshot['uplink'] | null;
  dns?: DataPlaneInit['dns'];
  intercept?: DataPlaneInit['intercept'];
}

/**
 * The TUN lives in another network namespace (tunsteer run): everything there
 * goes into it, while this process and its upstream sockets stay outside, on
 * the outer namespace's routes, so no policy routing is needed. DNS to any
 * address:53 is answered here (forwarded to this namespace's resolvers).
 */
function setupInNetns(args: UpArgs, tunName: string, log: Logger, tunIpv6: boolean): SystemSetup {
  const ns = args.netns!;
  // an adopted TUN came with its routes (set inside, where we could not go)
  const plan = [`ip route add default dev ${tunName} (in ${ns})`];
  if (!args.adoptTun) {
    ipInNetns(['link', 'set', 'dev', 'lo', 'up'], ns);
    ipInNetns(['route', 'add', 'default', 'dev', tunName], ns);
    // IPv6 too; best effort: a new namespace has no other IPv6 route, so without these IPv6 is unreachable, never leaked
    if (tunIpv6) {
      try {
        ipInNetns(['addr', 'add', args.tunAddress6, 'dev', tunName, 'nodad'], ns);
        ipInNetns(['-6', 'route', 'add', 'default', 'dev', tunName], ns);
        plan.push(`ip -6 route add default dev ${tunName} (in ${ns})`);
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'no IPv6 in the namespace');
      }
    }
  }
  const upstreams = systemResolvers(args);
  if (upstreams.length === 0) log.warn({ resolvConf: args.resolvConf }, 'no nameserver to forward DNS to');
  return {
    uplink: { dev: 'outer namespace', source: '' },
    plan,
    dns: { address: '*', upstreams },
  };
}

function setupRouteAll(args: UpArgs, planCfg: RoutePlanConfig, log: Logger): SystemSetup {
  const route = upRouteAll({ ...planCfg, stateDir: args.stateDir, log: (l) => log.warn(l) });
  const base: SystemSetup = {
    uplink: route.uplink,
    uplink6: route.uplink6,
    plan: route.steps.map((st) => st.desc),
    localAddress: route.uplink.source,
    // ::/0 goes into the TUN: without an IPv6 uplink the gateway's own IPv6 sockets would loop, so they are refused (null)
    // with a TUN that carries no IPv6 (prohibit), there is no bypass rule either: refuse IPv6 likewise
    ...(planCfg.route6 ? { localAddress6: (planCfg.tunIpv6 !== false && route.uplink6?.source) || null } : {}),
  };
  if (!args.dnsHijack) return base;
  const upstreams = systemResolvers(args);
  if (upstreams.length === 0) {
    log.warn({ resolvConf: args.resolvConf }, 'no nameserver to forward to: DNS is relayed, not hijacked');
    return base;
  }
  // DNS to any address:53 is answered by the gateway: names matching --host get
  // fake IPs (so rules see the name), the rest is forwarded to the system's resolvers.
  return { ...base, dns: { address: '*', upstreams } };
}

/**
 * up --netns/--pid: the plan goes into another namespace (a container's),
 * journalled there for `down`; the gateway's sockets stay in this one, on its
 * routes, so they need no bypass and bind to no particular address. DNS sent
 * from there to any address:53 is answered here.
 */
function setupRouteAllElsewhere(args: UpArgs, planCfg: RoutePlanConfig, log: Logger): SystemSetup {
  const route = upRouteAll({ ...planCfg, stateDir: args.stateDir, netnsPath: args.netns, log: (l) => log.warn(l) });
  const upstreams = systemResolvers(args);
  if (upstreams.length === 0) log.warn({ resolvConf: args.resolvConf }, 'no nameserver to forward to: DNS is relayed, not hijacked');
  return {
    uplink: { ...route.uplink, dev: `${route.uplink.dev} (in ${args.netns})` },
    plan: route.steps.map((st) => `${st.desc} (in ${args.netns})`),
    ...(args.dnsHijack && upstreams.length ? { dns: { address: '*', upstreams } } : {}),
  };
}

/** redirect, tproxy: nftables sends TCP to the data plane's listener (the data plane's own uid is exempt from redirect). */
function setupIntercept(args: UpArgs, uid: number, log: Logger): SystemSetup {
  const cfg = interceptConfig(args, uid);
  const r = upIntercept({ ...cfg, stateDir: args.stateDir, log: (l) => log.warn(l) });
  return { uplink: { dev: 'nftables', source: '' }, plan: r.steps.map((st) => st.desc), intercept: { kind: cfg.kind, port: cfg.port } };
}

function interceptConfig(args: UpArgs, uid: number) {
  return { kind: args.mode as 'redirect' | 'tproxy', port: args.interceptPort, uid, excludes: args.excludes, table: args.table, priority: args.rulePriority };
}

function setupPerHost(args: UpArgs, dnsAddress: string, log: Logger, route6: boolean): SystemSetup {
  const h = upPerHost({ tunName: args.tunName, pool: args.fakePool, ...(route6 ? { pool6: args.fakePool6 } : {}), dnsAddress, resolvConf: args.resolvConf, stateDir: args.stateDir, log: (l) => log.warn(l) });
  return { uplink: { dev: args.tunName, source: dnsAddress }, plan: h.steps.map((st) => st.desc), dns: { address: dnsAddress, upstreams: h.upstreams } };
}

function systemResolvers(args: UpArgs): string[] {
  try {
    return nameservers(readFileSync(args.resolvConf, 'utf8'));
  } catch {
    return []; // no resolver file: nothing to forward to
  }
}

/** The user the data plane drops to: --user, else nobody when there is one, else it stays root. */
function dataPlaneUser(args: UpArgs): Identity | null {
  if (process.getuid?.() !== 0) return null;
  if (args.user === 'root' || args.user === '0') return null;
  try {
    return resolveUser(args.user ?? 'nobody');
  } catch (e) {
    if (args.user !== undefined) throw new UsageError((e as Error).message);
    return null;
  }
}
