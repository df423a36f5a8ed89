// The data plane: the stack on the TUN, the proxy core behind it, the
// gateway's DNS and its listeners. It changes nothing on the system: routes
// and DNS belong to the supervisor (gateway.ts), which hands this a TUN and a
// plain-data description of what it set up, so it can run in a child process
// without root (data-plane-child.ts) or in-process (tunsteer run).
import { performance } from 'node:perf_hooks';
import { Resolver } from 'node:dns/promises';
import type { UpArgs } from './cli-args.js';
import type { Logger } from './log.js';
import type { TunDevice } from './tun/tun-device.js';
import type { Endpoint } from './net/endpoint.js';
import { FaultyTun } from './tun/faulty-tun.js';
import { Stack } from './stack/stack.js';
import { Drop } from './stack/drop-counters.js';
import { ipv4ToString, parseIpv4 } from './net/address.js';
import { RateLimit } from './rate-limit.js';
import { ProxyCore } from './proxy/proxy-core.js';
import { TunInbound } from './proxy/tun/tun-inbound.js';
import { UdpSessions } from './proxy/tun/udp-sessions.js';
import { TunUdp } from './proxy/tun/tun-udp.js';
import type { Policy } from './proxy/policy.js';
import { FakeIpPool } from './routing/fake-ip-pool.js';
import { HostPatterns } from './routing/host-patterns.js';
import { DnsOverride } from './routing/dns-override.js';
import { ExplicitProxy } from './proxy/explicit-proxy.js';
import { metricsRegistry, serveMetrics } from './metrics.js';
import { InterceptInbound } from './proxy/intercept-inbound.js';
import { TproxyUdp } from './proxy/tproxy-udp.js';
import { IdleGc } from './idle-gc.js';

const TICK_MS = 10;
const STATUS_MS = 1000;
const FAKE_IP_SAVE_MS = 5000;

/** What the supervisor set up, as plain data (it crosses a process boundary). */
export interface DataPlaneInit {
  args: UpArgs;
  /** The TUN's address as configured (for the status file). */
  tunAddress: string;
  /** Source address for upstream sockets: route-all binds them to the uplink's address so policy routing keeps them out of the TUN. */
  localAddress?: string;
  /** The same for IPv6 destinations (the IPv6 uplink's); null: route-all without an IPv6 uplink, IPv6 destinations refused. */
  localAddress6?: string | null;
  /** IPv6 relayed (default: args.ipv6). Off: the stack refuses IPv6 (ICMPv6 administratively prohibited) and mapped names get no AAAA. */
  ipv6?: boolean;
  /** DNS answered by the gateway at this address ('*': any address, port 53), forwarded to these resolvers. Absent: DNS is relayed like any UDP. */
  dns?: { address: string; upstreams: string[] };
  /** Fake-IP mappings the previous run saved. */
  fakeIps?: unknown;
  /** redirect and tproxy modes: the listener nftables sends TCP to (tproxy: and UDP, same port). */
  intercept?: { kind: 'redirect' | 'tproxy'; port: number };
}

export interface LiveStatus {
  counters: Record<string, number>;
  drops: Record<string, number>;
}

/** Where the data plane reports to: a file writer in-process, IPC messages in a child. */
export interface DataPlaneHost {
  log: Logger;
  publish(live: LiveStatus): void;
  saveFakeIps(data: unknown): void;
}

export interface DataPlane {
  /** Reset every connection (clients see RST, not a hang), flush, save the mappings. Synchronous. */
  stop(): void;
  /** Resolves once no connection is open (each has logged its line), or after maxMs. */
  settle(maxMs: number): Promise<void>;
}

/** dev is null in redirect and tproxy modes: connections come from a listener, not from a TUN. */
export async function startDataPlane(init: DataPlaneInit, dev: TunDevice | null, policy: Policy, host: DataPlaneHost): Promise<DataPlane> {
  const { args } = init;
  const { log } = host;
  let stack: Stack | null = null;
  const liveTo = (ip: number, ip6: string | null) => (stack?.hasFlowsTo(ip) ?? false) || (ip6 !== null && hasFlowsTo6(stack, ip6));
  const d = init.dns ? gatewayDns(init, init.dns.upstreams, liveTo, init.fakeIps, host) : null;
  const core = new ProxyCore({
    log,
    connectTimeoutMs: args.connectTimeoutMs,
    policy,
    sniffTimeoutMs: args.sniffTimeoutMs,
    httpInspect: args.httpInspect,
    localAddress: init.localAddress,
    localAddress6: init.localAddress6,
    ...(d && init.dns ? { ...d.proxy, dnsOverTcp: { address: init.dns.address, answer: (q: Buffer) => d.dns.answer(q, true) } } : {}),
  });
  const tun = dev ? startStack(init, dev, policy, core, d, log) : null;
  const s = (stack = tun?.stack ?? null);
  const intercept = init.intercept ? new InterceptInbound(core, init.intercept.kind) : null;
  if (intercept) await intercept.listen(init.intercept!.port);
  const udpTproxy = init.intercept?.kind === 'tproxy' ? startTproxyUdp(args, policy, log, init.intercept.port) : null;

  const idleGc = new IdleGc((globalThis as { gc?: () => void }).gc);
  const publish = () =>
    host.publish({
      counters: {
        ...s?.counters,
        connections: s?.connections ?? 0,
        ...s?.tcpStates(),
        ...tun?.udp.counters,
        ...tun?.relay.counters,
        ...prefixed('proxy_', core.counters),
        ...(intercept ? prefixed(`${init.intercept!.kind}_`, intercept.counters) : {}),
        ...(udpTproxy ? prefixed('tproxy_', udpTproxy.counters) : {}),
        ...(dev instanceof FaultyTun ? { ...prefixed('fault_rx_', dev.counters.rx), ...prefixed('fault_tx_', dev.counters.tx) } : {}),
        ...d?.counters(),
        ...memoryCounters(),
        mem_idle_gcs: idleGc.runs,
      },
      drops: s ? Object.fromEntries(s.drops.entries()) : {},
    });
  publish();
  setInterval(() => {
    idleGc.sample(Math.max(s?.connections ?? 0, core.counters.active), performance.now());
    publish();
  }, STATUS_MS).unref();
  if (args.listen) await new ExplicitProxy(core).listen(args.listen.host, args.listen.port);
  if (args.metrics) {
    const stackView = () => ({ counters: { ...s?.counters }, drops: s ? Object.fromEntries(s.drops.entries()) : {} });
    await serveMetrics(args.metrics, metricsRegistry({ proxy: core, stack: stackView }));
  }
  return {
    async settle(maxMs) {
      for (const until = Date.now() + maxMs; core.counters.active > 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10));
    },
    stop() {
      try {
        intercept?.close();
        udpTproxy?.close();
        s?.abortAll();
        tun?.relay.closeAll();
        dev?.flushTx();
      } finally {
        d?.save();
      }
    },
  };
}

function startStack(init: DataPlaneInit, dev: TunDevice, policy: Policy, core: ProxyCore, d: GatewayDns | null, log: Logger) {
  const { args } = init;
  const errorLog = new RateLimit(10_000);
  const dnsAt = init.dns ? (init.dns.address === '*' ? -1 : parseIpv4(init.dns.address)!) : 0;
  // UDP flow keys hold IPv6 addresses as the stack's interned ids: their text comes from the stack
  let text = (ip: number) => ipv4ToString(ip);
  const hostOf = (ip: number) => {
    const t = text(ip);
    return t.includes(':') ? d?.hostnameOf6(t) : d?.hostnameOf(ip);
  };
  // The stack hands UDP up to tunUdp (the gateway's DNS, then the relay), built once the stack exists.
  let tunUdp: TunUdp | null = null;
  const s = new Stack(dev, (c) => core.handle(new TunInbound(c, d ? d.hostnameOfEndpoint : undefined)), {
    ipv6: init.ipv6 ?? args.ipv6,
    maxConnections: args.maxConnections,
    maxHalfOpen: args.synBacklog,
    synCookies: args.synCookies,
    memoryBudget: args.memoryBudgetMb * 1024 * 1024,
    tcp: { rcvBuf: args.tcpRcvBuf, sndBuf: args.tcpSndBuf },
    clock: () => performance.now(),
    udp: { onDatagram: (k, b, o, l, now) => tunUdp!.onDatagram(k, b, o, l, now) },
  });
  text = (ip: number) => s.addressText(ip);
  const relay = new UdpSessions(s, {
    idleMs: args.udpIdleMs,
    maxFlows: args.maxUdpFlows,
    blockQuic: args.blockQuic,
    localAddress: init.localAddress,
    // null (no IPv6 uplink): IPv6 flows are rejected in admit below
    ...(init.localAddress6 ? { localAddress6: init.localAddress6 } : {}),
    ...(d ? { resolveTarget: d.resolveTarget } : {}),
    // UDP is relayed direct: a proxy rule cannot carry it (no SOCKS5 UDP yet), so only reject applies
    admit: (f) => {
      // no IPv6 uplink while ::/0 goes into the TUN: an unbound IPv6 socket would send into our own TUN (a loop)
      if (init.localAddress6 === null && text(f.serverIp).includes(':')) return { rule: 'no IPv6 uplink', action: 'reject' };
      const dec = policy.decide({
        hostname: hostOf(f.serverIp),
        protocol: 'udp',
        dstAddress: text(f.serverIp),
        dstPort: f.serverPort,
        srcAddress: text(f.clientIp),
      });
      return { rule: dec.rule, action: dec.action === 'reject' ? 'reject' : 'direct' };
    },
  }, (e) => log.info({ inbound: 'tun', proto: 'udp', ...e }, 'conn'));
  const udp = (tunUdp = new TunUdp(s, d ? { address: dnsAt, answer: (q: Buffer) => d.dns.answer(q) } : null, relay));
  dev.start((batch) => {
    const now = performance.now();
    try {
      for (let i = 0; i < batch.count; i++) s.input(batch.slots[i], 0, batch.lengths[i], now);
      s.tick(now);
      relay.sweep(now);
    } catch (err) {
      // One guard per batch: a bug costs the rest of this batch, never the gateway.
      s.drops.count(Drop.internal_error);
      if (errorLog.allow(now)) log.error({ err }, 'internal error in packet input');
    }
  });
  setInterval(() => {
    const now = performance.now();
    s.tick(now);
    relay.sweep(now);
  }, TICK_MS);
  // kill -USR2 PID: every connection's sequence space, windows and timers, one warn line each
  process.on('SIGUSR2', () => {
    for (const f of s.debugFlows()) log.warn(f, 'tcp debug');
  });

  return { stack: s, udp, relay };
}

/** tproxy's UDP: relayed direct unless a rule rejects it (no SOCKS5 UDP), logged like the TUN's UDP flows. Binds while still root. */
function startTproxyUdp(args: UpArgs, policy: Policy, log: Logger, port: number): TproxyUdp {
  const udp = new TproxyUdp({
    idleMs: args.udpIdleMs,
    maxFlows: args.maxUdpFlows,
    admit: (src, dst) => {
      const dec = policy.decide({ protocol: 'udp', dstAddress: dst.address, dstPort: dst.port, srcAddress: src.address });
      return { rule: dec.rule, action: dec.action === 'reject' ? 'reject' : 'direct' };
    },
    onFlowEnd: (e) => log.info({ inbound: 'tproxy', proto: 'udp', ...e }, 'conn'),
    onError: (err) => log.error({ err }, 'tproxy UDP socket failed'),
  });
  udp.listen(port);
  return udp;
}

/**
 * The gateway's DNS and fake-IP pool, shared by both modes: answers, the
 * stack's and the proxy core's view of fake IPs, and mapping persistence
 * (clients may have cached an answer across a restart).
 */
type GatewayDns = ReturnType<typeof gatewayDns>;

function gatewayDns(
  init: DataPlaneInit,
  upstreams: string[],
  liveTo: (ip: number, ip6: string | null) => boolean,
  saved: unknown,
  host: DataPlaneHost,
) {
  const { args, localAddress } = init;
  const localAddress6 = init.localAddress6 ?? undefined;
  // IPv6 resolvers are unreachable without an IPv6 uplink (and asking them would loop through the TUN)
  if (init.localAddress6 === null) upstreams = upstreams.filter((u) => !u.replace(/^\[/, '').includes(':') || /^[^:]+:\d+$/.test(u));
  const ipv6 = init.ipv6 ?? args.ipv6;
  // one index space: a fake's IPv4 and IPv6 addresses are live if either has flows
  const pool: FakeIpPool = new FakeIpPool({ cidr: args.fakePool, reserved: 4, cidr6: ipv6 ? args.fakePool6 : null }, (ip) => liveTo(ip, pool.toV6(ip)));
  try {
    if (saved !== undefined) pool.load(saved as Parameters<FakeIpPool['load']>[0]);
  } catch {
    // unreadable: start empty
  }
  let last = '';
  const save = () => {
    const data = pool.save();
    const text = JSON.stringify(data);
    if (text === last) return;
    host.saveFakeIps(data);
    last = text;
  };
  setInterval(save, FAKE_IP_SAVE_MS).unref();
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers(upstreams);
  if (localAddress || localAddress6) resolver.setLocalAddress(localAddress ?? '0.0.0.0', localAddress6 ?? '::0');
  // the real address of a mapped name: the family the client used first (it asked for that fake), then the
  // other; IPv4 only when IPv6 is off or has no direct path (route-all without an IPv6 uplink)
  const v6Direct = ipv6 && init.localAddress6 !== null;
  const lookup = async (name: string, family: 4 | 6 = 4) => {
    const order = !v6Direct ? [4] : family === 6 ? [6, 4] : [4, 6];
    let last: unknown = new Error(`${name}: no address`);
    for (const f of order) {
      try {
        const [a] = f === 6 ? await resolver.resolve6(name) : await resolver.resolve4(name);
        if (a) return a;
      } catch (e) {
        last = e;
      }
    }
    throw last;
  };
  const dns = new DnsOverride({ hosts: new HostPatterns(args.hosts), pool, upstreams, timeoutMs: 2000, ttl: 10, localAddress, localAddress6 });
  return {
    dns,
    save,
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
      isFakeAddress: (a: string) => {
        const ip = parseIpv4(a);
        return ip !== null ? pool.contains(ip) : pool.fromV6(a) !== undefined;
      },
    },
    counters: () => ({ ...prefixed('dns_', dns.counters), fake_mappings: pool.mappings, upstream_resolvers: upstreams.length }),
  };
}

/** The stack's liveness check for an IPv6 address, where the stack has one (IPv6 stacks). */
function hasFlowsTo6(stack: Stack | null, address: string): boolean {
  const s = stack as (Stack & { hasFlowsToAddress?: (a: string) => boolean }) | null;
  return s?.hasFlowsToAddress?.(address) ?? false;
}

export function prefixed(p: string, o: object): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) r[p + k] = v as number;
  return r;
}

/** Where the data plane's memory is (RSS against V8's heap and Buffers), to tell a leak from a heap V8 has kept. */
function memoryCounters(): Record<string, number> {
  const m = process.memoryUsage();
  return { mem_rss: m.rss, mem_heap_total: m.heapTotal, mem_heap_used: m.heapUsed, mem_external: m.external, mem_array_buffers: m.arrayBuffers };
}
