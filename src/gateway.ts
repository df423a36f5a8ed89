// `tunsteer up`: open the TUN, run the stack and the proxy core, install the
// mode's system changes (journalled before each step), and restore on every
// exit path.
import { performance } from 'node:perf_hooks';
import { readFileSync, rmSync, writeFileSync, renameSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import type { UpArgs } from './cli-args.js';
import { pino } from 'pino';
import { createLogger, type Logger } from './log.js';
import { ip as ipInNetns } from './tun/ip-link.js';
import { ipv4ToInt, parseCidr } from './cidr.js';
import { openTun } from './tun/open-tun.js';
import { FaultyTun, parseFaultSpec } from './tun/faulty-tun.js';
import type { TunDevice } from './tun/tun-device.js';
import { Stack, type StackOptions } from './stack/stack.js';
import { Drop } from './stack/drop-counters.js';
import { ipv4ToString, parseIpv4 } from './stack/wire/addr.js';
import { RateLimit } from './rate-limit.js';
import { ProxyCore, type ProxyCoreOptions } from './proxy/proxy-core.js';
import { dryRunRouteAll, upRouteAll } from './routing/route-all.js';
import { RouteJournal } from './routing/route-journal.js';
import { installExitHandlers, restoreFromJournal } from './routing/restore.js';
import type { RoutePlanConfig } from './routing/route-plan.js';
import { nameservers, planPerHost, upPerHost } from './routing/per-host.js';
import { FakeIpPool } from './routing/fake-ip-pool.js';
import { HostPatterns } from './routing/host-patterns.js';
import { DnsOverride } from './routing/dns-override.js';
import { renderPlan } from './routing/route-plan.js';
import { statusPath, writeStatus, type StatusSnapshot } from './status-file.js';
import { policyFromConfig } from './config/build-policy.js';
import { ExplicitProxy } from './proxy/explicit-proxy.js';
import { metricsRegistry, serveMetrics } from './metrics.js';

const TICK_MS = 10;

/** What a mode contributes: its routing, and options for the stack and the proxy core. */
interface ModeSetup {
  uplink: StatusSnapshot['uplink'];
  plan: string[];
  stack: Partial<StackOptions>;
  proxy: Partial<ProxyCoreOptions>;
  counters?: () => Record<string, number>;
  onExit?: () => void;
}

export async function runUp(args: UpArgs): Promise<number> {
  const planCfg: RoutePlanConfig = {
    tunName: args.tunName,
    table: args.table,
    priorityBase: args.rulePriority,
    excludes: args.excludes,
  };
  const pool = parseCidr(args.fakePool)!;
  const poolBase = ipv4ToInt(pool.address);
  const dnsAddress = ipv4ToString((poolBase + 2) >>> 0);
  const tunAddress = args.mode === 'per-host' ? `${ipv4ToString((poolBase + 1) >>> 0)}/32` : args.tunAddress;
  if (args.dryRun) {
    const lines =
      args.mode === 'route-all'
        ? dryRunRouteAll(planCfg).lines
        : renderPlan(
            planPerHost({ tunName: args.tunName, pool: args.fakePool, dnsAddress, resolvConf: args.resolvConf, resolvConfText: readFileSync(args.resolvConf, 'utf8') }),
          );
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  }
  const held = new RouteJournal(args.stateDir).holder();
  if (held !== null) {
    process.stderr.write(`tunsteer: a gateway (pid ${held}) already runs with state dir ${args.stateDir}\n`);
    return 1;
  }

  // secrets and upstreams are read before anything changes on the system
  const policy = policyFromConfig(args.config);
  // `tunsteer run` keeps its program's stdout clean: the gateway logs to stderr there
  const log = createLogger(args.logLevel, args.netns ? pino.destination({ dest: 2, sync: true }) : undefined);
  const tun = await openTun({ backend: args.tunBackend, name: args.tunName, mtu: args.mtu, addresses: [tunAddress], netns: args.netns });
  const faults = parseFaultSpec(process.env.TUNSTEER_TEST_FAULTS);
  const dev: TunDevice = faults ? new FaultyTun(tun, faults) : tun;
  if (faults) log.warn({ faults }, 'TEST FAULT INJECTION on the TUN path (TUNSTEER_TEST_FAULTS)');
  let stack: Stack | null = null;
  let mode: ModeSetup | null = null;
  installExitHandlers(
    () => {
      try {
        stack?.abortAll();
        stack?.udp?.closeAll();
        dev.flushTx();
        mode?.onExit?.();
      } finally {
        restoreFromJournal(args.stateDir, { ownOnly: true });
        rmSync(statusPath(args.stateDir), { force: true });
        dev.close();
      }
    },
    (err, what) => log.fatal({ err, what }, what === 'restore' ? 'restoring routes failed' : 'gateway failed; routes restored'),
  );

  const liveTo = (ip: number) => stack?.hasFlowsTo(ip) ?? false;
  mode = args.netns
    ? setupInNetns(args, dev.name, liveTo, log)
    : args.mode === 'route-all'
      ? setupRouteAll(args, planCfg, liveTo, log)
      : await setupPerHost(args, dnsAddress, liveTo, log);
  const core = new ProxyCore({
    log,
    connectTimeoutMs: args.connectTimeoutMs,
    policy,
    sniffTimeoutMs: args.sniffTimeoutMs,
    httpInspect: args.httpInspect,
    ...mode.proxy,
  });
  const errorLog = new RateLimit(10_000);
  const s = (stack = new Stack(dev, (c) => core.handle(c), {
    maxConnections: args.maxConnections,
    tcp: { rcvBuf: args.tcpRcvBuf, sndBuf: args.tcpSndBuf },
    onUdpFlowEnd: (e) => log.info({ inbound: 'tun', proto: 'udp', ...e }, 'conn'),
    ...mode.stack,
    udp: {
      idleMs: args.udpIdleMs,
      maxFlows: args.maxUdpFlows,
      blockQuic: args.blockQuic,
      // UDP is relayed direct: a proxy rule cannot carry it (no SOCKS5 UDP yet), so only reject applies
      admit: (f) => {
        const d = policy.decide({
          hostname: mode?.stack.hostnameOf?.(f.serverIp),
          protocol: 'udp',
          dstAddress: ipv4ToString(f.serverIp),
          dstPort: f.serverPort,
          srcAddress: ipv4ToString(f.clientIp),
        });
        return { rule: d.rule, action: d.action === 'reject' ? 'reject' : 'direct' };
      },
      ...mode.stack.udp,
    },
  }));
  dev.start((batch) => {
    const now = performance.now();
    try {
      for (let i = 0; i < batch.count; i++) s.input(batch.slots[i], 0, batch.lengths[i], now);
      s.tick(now);
    } catch (err) {
      // One guard per batch: a bug costs the rest of this batch, never the gateway.
      s.drops.count(Drop.internal_error);
      if (errorLog.allow(now)) log.error({ err }, 'internal error in packet input');
    }
  });
  setInterval(() => s.tick(performance.now()), TICK_MS);
  // kill -USR2 PID: every connection's sequence space, windows and timers, one warn line each
  process.on('SIGUSR2', () => {
    for (const f of s.debugFlows()) log.warn(f, 'tcp debug');
  });

  const startedAt = new Date().toISOString();
  const m = mode;
  const publish = () => {
    const snap: StatusSnapshot = {
      pid: process.pid,
      mode: args.mode,
      tun: { name: dev.name, mtu: dev.mtu, address: tunAddress },
      uplink: m.uplink,
      startedAt,
      updatedAt: new Date().toISOString(),
      counters: {
        ...s.counters,
        connections: s.connections,
        ...s.tcpStates(),
        ...s.udp?.counters,
        ...prefixed('proxy_', core.counters),
        ...(dev instanceof FaultyTun ? { ...prefixed('fault_rx_', dev.counters.rx), ...prefixed('fault_tx_', dev.counters.tx) } : {}),
        ...m.counters?.(),
      },
      drops: Object.fromEntries(s.drops.entries()),
    };
    writeStatus(args.stateDir, snap);
  };
  mkdirSync(args.stateDir, { recursive: true });
  publish();
  setInterval(publish, 1000).unref();
  if (args.listen) await new ExplicitProxy(core).listen(args.listen.host, args.listen.port);
  if (args.metrics) {
    const stackView = () => ({ counters: { ...s.counters }, drops: Object.fromEntries(s.drops.entries()) });
    await serveMetrics(args.metrics, metricsRegistry({ proxy: core, stack: stackView }));
  }
  log.info({ mode: args.mode, tun: dev.name, mtu: dev.mtu, uplink: m.uplink, plan: m.plan }, 'gateway up');
  return -1;
}

/**
 * The TUN lives in another network namespace (tunsteer run): everything there
 * goes into it, while this process and its upstream sockets stay outside, on
 * the outer namespace's routes, so no policy routing is needed. DNS to any
 * address:53 is answered here (forwarded to this namespace's resolvers).
 */
function setupInNetns(args: UpArgs, tunName: string, liveTo: (ip: number) => boolean, log: Logger): ModeSetup {
  const ns = args.netns!;
  ipInNetns(['link', 'set', 'dev', 'lo', 'up'], ns);
  ipInNetns(['route', 'add', 'default', 'dev', tunName], ns);
  let upstreams: string[] = [];
  try {
    upstreams = nameservers(readFileSync(args.resolvConf, 'utf8'));
  } catch {
    // no resolver file: DNS questions for unmapped names get SERVFAIL
  }
  if (upstreams.length === 0) log.warn({ resolvConf: args.resolvConf }, 'no nameserver to forward DNS to');
  const d = gatewayDns(args, upstreams, undefined, liveTo);
  return {
    uplink: { dev: 'outer namespace', source: '' },
    plan: [`ip route add default dev ${tunName} (in ${ns})`],
    stack: { ...d.stack, dns: { address: -1, answer: (q) => d.dns.answer(q) } },
    proxy: { ...d.proxy, dnsOverTcp: { address: '*', answer: (q) => d.dns.answer(q, true) } },
    counters: d.counters,
    onExit: d.save,
  };
}

function setupRouteAll(args: UpArgs, planCfg: RoutePlanConfig, liveTo: (ip: number) => boolean, log: Logger): ModeSetup {
  const route = upRouteAll({ ...planCfg, stateDir: args.stateDir, log: (l) => log.warn(l) });
  const base: ModeSetup = {
    uplink: route.uplink,
    plan: route.steps.map((st) => st.desc),
    stack: { udp: { localAddress: route.uplink.source } },
    proxy: { localAddress: route.uplink.source },
  };
  if (!args.dnsHijack) return base;
  let upstreams: string[] = [];
  try {
    upstreams = nameservers(readFileSync(args.resolvConf, 'utf8'));
  } catch {
    // no resolver file: nothing to forward to
  }
  if (upstreams.length === 0) {
    log.warn({ resolvConf: args.resolvConf }, 'no nameserver to forward to: DNS is relayed, not hijacked');
    return base;
  }
  // DNS to any address:53 is answered by the gateway: names matching --host get
  // fake IPs (so rules see the name), the rest is forwarded to the system's resolvers.
  const d = gatewayDns(args, upstreams, route.uplink.source, liveTo);
  return {
    ...base,
    stack: { ...d.stack, dns: { address: -1, answer: (q) => d.dns.answer(q) }, udp: { ...base.stack.udp, ...d.stack.udp } },
    proxy: { ...base.proxy, ...d.proxy, dnsOverTcp: { address: '*', answer: (q) => d.dns.answer(q, true) } },
    counters: d.counters,
    onExit: d.save,
  };
}

async function setupPerHost(args: UpArgs, dnsAddress: string, liveTo: (ip: number) => boolean, log: Logger): Promise<ModeSetup> {
  const h = upPerHost({ tunName: args.tunName, pool: args.fakePool, dnsAddress, resolvConf: args.resolvConf, stateDir: args.stateDir, log: (l) => log.warn(l) });
  const d = gatewayDns(args, h.upstreams, undefined, liveTo);
  return {
    uplink: { dev: args.tunName, source: dnsAddress },
    plan: h.steps.map((st) => st.desc),
    stack: { ...d.stack, dns: { address: parseIpv4(dnsAddress)!, answer: (q) => d.dns.answer(q) } },
    proxy: { ...d.proxy, dnsOverTcp: { address: dnsAddress, answer: (q) => d.dns.answer(q, true) } },
    counters: d.counters,
    onExit: d.save,
  };
}

/**
 * The gateway's DNS and fake-IP pool, shared by both modes: answers, the
 * stack's and the proxy core's view of fake IPs, and mapping persistence
 * (clients may have cached an answer across a restart).
 */
function gatewayDns(args: UpArgs, upstreams: string[], localAddress: string | undefined, liveTo: (ip: number) => boolean) {
  const pool = new FakeIpPool({ cidr: args.fakePool, reserved: 4 }, liveTo);
  const mapFile = join(args.stateDir, 'fake-ip.json');
  try {
    pool.load(JSON.parse(readFileSync(mapFile, 'utf8')));
  } catch {
    // none yet, or unreadable: start empty
  }
  let saved = '';
  const save = () => {
    const text = JSON.stringify(pool.save());
    if (text === saved) return;
    mkdirSync(args.stateDir, { recursive: true });
    writeFileSync(`${mapFile}.tmp`, text);
    renameSync(`${mapFile}.tmp`, mapFile);
    saved = text;
  };
  setInterval(save, 5000).unref();
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers(upstreams);
  if (localAddress) resolver.setLocalAddress(localAddress);
  const lookup = async (name: string) => {
    const [a] = await resolver.resolve4(name);
    if (!a) throw new Error(`${name}: no address`);
    return a;
  };
  const dns = new DnsOverride({ hosts: new HostPatterns(args.hosts), pool, upstreams, timeoutMs: 2000, ttl: 10, localAddress });
  const stack: Partial<StackOptions> = {
    hostnameOf: (ip) => (pool.contains(ip) ? pool.nameOf(ip) : undefined),
    udp: {
      resolveTarget: async (dst) => {
        if (!pool.contains(dst)) return ipv4ToString(dst);
        const name = pool.nameOf(dst);
        return name === undefined ? null : lookup(name);
      },
    },
  };
  const proxy: Partial<ProxyCoreOptions> = {
    lookup,
    isFakeAddress: (a) => {
      const ip = parseIpv4(a);
      return ip !== null && pool.contains(ip);
    },
  };
  const counters = () => ({ ...prefixed('dns_', dns.counters), fake_mappings: pool.mappings, upstream_resolvers: upstreams.length });
  return { dns, stack, proxy, counters, save };
}

function prefixed(p: string, o: object): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) r[p + k] = v as number;
  return r;
}
