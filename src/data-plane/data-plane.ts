// The data plane: the stack on the TUN, the proxy core behind it, the
// gateway's DNS and its listeners. It changes nothing on the system: routes
// and DNS belong to the supervisor (src/gateway), which hands this a TUN and
// a plain-data config (config.ts) that includes what it set up, so it runs in
// a child process without root (child.ts), or in the supervisor's own process
// where the TUN cannot be handed over (tunsteer run, the tuntap2 backend).
import { performance } from 'node:perf_hooks';
import type { Logger } from '../logging/log.js';
import type { TunDevice } from '../tun/tun-device.js';
import { FaultyTun } from '../tun/faulty-tun.js';
import { Stack } from '../stack/stack.js';
import { Drop } from '../stack/drop-counters.js';
import { ipv4ToString, parseIpv4 } from '../net/address.js';
import { RateLimit } from '../logging/rate-limit.js';
import { ProxyCore } from '../proxy/proxy-core.js';
import { TunInbound } from '../proxy/tun/tun-inbound.js';
import { UdpSessions } from '../proxy/tun/udp-sessions.js';
import { TunUdp } from '../proxy/tun/tun-udp.js';
import type { Policy } from '../proxy/policy.js';
import { ExplicitProxy } from '../proxy/explicit-proxy.js';
import { DestinationCheck, resolverLookup } from '../proxy/destination-check.js';
import { admitUdp } from '../proxy/udp-admission.js';
import { InterceptInbound } from '../proxy/intercept-inbound.js';
import { TproxyUdp } from '../proxy/tproxy-udp.js';
import { IdleGc } from './idle-gc.js';
import type { DataPlaneConfig } from './config.js';
import { gatewayDns, type GatewayDns } from './gateway-dns.js';
import { memoryCounters, prefixed } from './counters.js';
import type { NetworkUpdate } from './ipc.js';
import { applyNetworkUpdate, type LiveUplink } from './network-update.js';
import { OwnerResolver } from '../owner/owner-resolver.js';
import type { ProcessInfo } from '../owner/proc-sockets.js';
import type { OwnerLookup } from '../proxy/owner-lookup.js';
import { LiveRuleSet } from '../proxy/rules/live-rule-set.js';
import { watchRuleSets } from '../config/rule-set-files.js';
import type { LiveConfig } from './config.js';
import { applyLive, type LiveTarget } from './live-apply.js';
import type { ControlServer } from '../control/control-server.js';
import type { ReloadResult } from '../control/contracts.js';
import { LogTap } from '../logging/log-tap.js';
import { DeadlineTimer } from './deadline-timer.js';
import { checksumVouched, newVnetHdr, readVnetHdr } from '../stack/wire/virtio-net-hdr.js';
import { offloadNames } from '../tun/tun-offload.js';

const STATUS_MS = 1000;
/** How a connection still open when the data plane stops ended, in its log line (TCP and UDP alike). */
export const STOP_END = 'gateway-stop';

/**
 * A UDP flow's log line. The UDP relays (the stack's, tproxy's) end every flow
 * with 'shutdown' when closed all at once, which only the stop does: the line
 * says so in the words the TCP lines use.
 */
function udpFlowLine(inbound: 'tun' | 'tproxy', e: { end: string }): object {
  if (e.end === 'shutdown') udpStopped++;
  return { inbound, proto: 'udp', ...e, end: e.end === 'shutdown' ? STOP_END : e.end };
}

/** UDP flows ended by the stop (their lines say gateway-stop), for the stop's "restored, N connections closed". */
let udpStopped = 0;

export interface LiveStatus {
  counters: Record<string, number>;
  drops: Record<string, number>;
}

/** Where the data plane reports to: a file writer in-process, IPC messages in a child. */
export interface DataPlaneHost {
  log: Logger;
  publish(live: LiveStatus): void;
  saveFakeIps(data: unknown): void;
  /** Which process holds a socket; default: search /proc here (a child without root asks its supervisor). */
  findProcess?: (inode: number, uid: number) => Promise<ProcessInfo | null>;
  /** Called after a rule-set file was reloaded and swapped in (the config reload's hook). */
  onRuleSetReload?: (name: string) => void;
  /** The control API's reload (PUT /configs): the supervisor's, which reads the config file. Absent: this gateway cannot reload. */
  reload?(force: boolean): Promise<ReloadResult>;
  /** The log lines the control API streams (GET /logs); the logger must write through it. */
  logs?: LogTap;
}

export interface DataPlane {
  /**
   * Log every connection still open (end "gateway-stop"), reset them (clients
   * see RST, not a hang), flush, save the mappings. Synchronous: the process
   * may exit right after. Returns how many connections (TCP and UDP) it closed.
   */
  stop(): number;
  /** Resolves once no connection is open (each has logged its line), or after maxMs. */
  settle(maxMs: number): Promise<void>;
  /** The network changed under the gateway (the supervisor follows it): see network-update.ts. */
  update(u: NetworkUpdate): void;
  /** A reload: swap these in for new connections and requests (live-apply.ts); throws, changing nothing, if they cannot be built. */
  apply(live: LiveConfig): void;
}

/** dev is null in redirect and tproxy modes: connections come from a listener, not from a TUN. */
export async function startDataPlane(config: DataPlaneConfig, dev: TunDevice | null, policy: Policy, host: DataPlaneHost): Promise<DataPlane> {
  const { log } = host;
  let stack: Stack | null = null;
  const liveTo = (ip: number, ip6: string | null) => (stack?.hasFlowsTo(ip) ?? false) || (ip6 !== null && hasFlowsTo6(stack, ip6));
  // where upstream sockets bind: the proxy core reads it at each dial, so it follows the network (update below)
  const uplink: LiveUplink = { localAddress: config.localAddress, localAddress6: config.localAddress6 };
  // where secret headers may go: addresses the gateway resolved (or told a client) for a name
  let d: GatewayDns | null = null;
  const destinations = new DestinationCheck(
    resolverLookup(() => ({ servers: d?.upstreams ?? config.dns?.upstreams, localAddress: uplink.localAddress, localAddress6: uplink.localAddress6 })),
  );
  d = config.dns
    ? gatewayDns(
        config,
        config.dns.upstreams,
        liveTo,
        (data) => host.saveFakeIps(data),
        destinations,
        (f) => log.warn(f, 'dns lookup failed'),
      )
    : null;
  // sock_diag answers in this process's namespace: where the TUN's or the redirected clients' sockets are
  const owners = new OwnerResolver({ ...(host.findProcess ? { findProcess: host.findProcess } : {}), ...(config.clientNetns ? { netns: config.clientNetns } : {}) });
  // entering another namespace takes privileges the data plane gives up once started
  if (config.clientNetns) owners.open();
  // the policy's rule-set files are watched; a reload's new policy brings its own (target.onPolicy below)
  const watchSets = (p: Policy) => {
    const liveSets = [...p.ruleSets.values()].filter((r): r is LiveRuleSet => r instanceof LiveRuleSet);
    return liveSets.length ? watchRuleSets(new Map(liveSets.map((r) => [r.name, r])), { log, onReload: (r) => host.onRuleSetReload?.(r.name) }) : null;
  };
  let stopWatching = watchSets(policy);
  const core = new ProxyCore({
    log,
    connectTimeoutMs: config.connectTimeoutMs,
    policy,
    owners,
    sniffTimeoutMs: config.sniffTimeoutMs,
    httpInspect: config.httpInspect,
    destinations,
    ...(d && config.dns ? { ...d.proxy, dnsOverTcp: { address: config.dns.address, answer: (q: Buffer) => d.dns.answer(q, true) } } : {}),
    get localAddress() {
      return uplink.localAddress;
    },
    get localAddress6() {
      return uplink.localAddress6;
    },
  });
  const tun = dev ? startStack(config, dev, core, d, log, uplink, owners) : null;
  const s = (stack = tun?.stack ?? null);
  const intercept = config.intercept ? new InterceptInbound(core, config.intercept.kind) : null;
  if (intercept) await intercept.listen(config.intercept!.port);
  const udpTproxy = config.intercept?.kind === 'tproxy' ? startTproxyUdp(config, core, log, config.intercept.port, owners) : null;
  const target: LiveTarget = {
    core,
    stack: s,
    relay: tun?.relay ?? null,
    dns: d,
    log,
    config,
    onPolicy: (p) => {
      stopWatching?.();
      stopWatching = watchSets(p);
    },
  };
  let lastLive: LiveStatus = { counters: {}, drops: {} };

  const gc = (globalThis as { gc?: () => void }).gc;
  // the crowd's closed flows first leave the timer wheel, which otherwise drops them lazily within two turns (82 s)
  const idleGc = new IdleGc(
    gc
      ? () => {
          s?.releaseClosed();
          gc();
        }
      : undefined,
  );
  const publish = () =>
    host.publish(
      (lastLive = {
        counters: {
          ...s?.counters,
          connections: s?.connections ?? 0,
          ...s?.tcpStates(),
          ...tun?.udp.counters,
          ...tun?.relay.counters,
          ...prefixed('proxy_', core.counters),
          ...(intercept ? prefixed(`${config.intercept!.kind}_`, intercept.counters) : {}),
          ...(udpTproxy ? prefixed('tproxy_', udpTproxy.counters) : {}),
          ...(dev instanceof FaultyTun ? { ...prefixed('fault_rx_', dev.counters.rx), ...prefixed('fault_tx_', dev.counters.tx) } : {}),
          ...d?.counters(),
          ...owners.counters,
          ...memoryCounters(),
          mem_idle_gcs: idleGc.runs,
          timer_wakes: tun?.timer.wakes ?? 0,
          ...Object.fromEntries(offloadNames(dev?.offload).map((k) => [`tun_offload_${k}`, 1])),
        },
        drops: s ? Object.fromEntries(s.drops.entries()) : {},
      }),
    );
  publish();
  setInterval(() => {
    idleGc.sample(Math.max(s?.connections ?? 0, core.counters.active), performance.now());
    publish();
  }, STATUS_MS).unref();
  if (config.listen) await new ExplicitProxy(core).listen(config.listen.host, config.listen.port);
  if (config.metrics) {
    const stackView = () => ({ counters: { ...s?.counters }, drops: s ? Object.fromEntries(s.drops.entries()) : {} });
    // prom-client only with --metrics: it costs every process about 13 MB of RSS
    const { metricsRegistry, serveMetrics } = await import('./metrics.js');
    await serveMetrics(config.metrics, metricsRegistry({ proxy: core, stack: stackView }));
  }
  let control: ControlServer | null = null;
  if (config.control) {
    // loaded only when asked for: most gateways run without it, and each start pays for what it imports
    const [{ ControlServer }, { controlContext }] = await Promise.all([import('../control/control-server.js'), import('./control-context.js')]);
    const startedAt = new Date().toISOString();
    control = new ControlServer(
      controlContext({
        config: () => target.config,
        core,
        dns: d,
        log,
        logs: host.logs ?? new LogTap(),
        status: () => ({
          mode: config.about?.mode,
          device: dev ? { name: dev.name, mtu: dev.mtu } : null,
          routes: config.about?.plan ?? [],
          offloads: offloadNames(dev?.offload),
          workers: 1,
          uplink,
          startedAt,
          connections: core.connections.size,
          ...lastLive,
        }),
        reload:
          host.reload ??
          (async () => ({
            ok: false,
            refused: 'unsupported',
            problems: ['this gateway cannot reload (tunsteer run): start it with tunsteer up'],
            applied: [],
            routing: [],
            restart: [],
            ms: 0,
          })),
      }),
      log,
    );
    await control.listen(config.control.host, config.control.port);
  }
  return {
    update: (u) => applyNetworkUpdate(u, { uplink, udp: tun?.relay ?? null, dns: d, log }),
    apply: (live) => applyLive(target, live),
    async settle(maxMs) {
      for (const until = Date.now() + maxMs; core.counters.active > 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
    },
    stop() {
      const tcp = core.counters.active;
      const udpBefore = udpStopped;
      try {
        // their lines first, while this process can still write them: what follows ends them for good
        core.finishAll(STOP_END);
        stopWatching?.();
        owners.close();
        control?.close();
        intercept?.close();
        udpTproxy?.close();
        s?.abortAll();
        tun?.relay.closeAll();
        dev?.flushTx();
      } finally {
        d?.save();
      }
      return tcp + (udpStopped - udpBefore);
    },
  };
}

function startStack(config: DataPlaneConfig, dev: TunDevice, core: ProxyCore, d: GatewayDns | null, log: Logger, uplink: LiveUplink, owners: OwnerLookup) {
  const errorLog = new RateLimit(10_000);
  const dnsAt = config.dns ? (config.dns.address === '*' ? -1 : parseIpv4(config.dns.address)!) : 0;
  // UDP flow keys hold IPv6 addresses as the stack's interned ids: their text comes from the stack
  let text = (ip: number) => ipv4ToString(ip);
  const hostOf = (ip: number) => {
    const t = text(ip);
    return t.includes(':') ? d?.hostnameOf6(t) : d?.hostnameOf(ip);
  };
  // The stack hands UDP up to tunUdp (the gateway's DNS, then the relay), built once the stack exists.
  let tunUdp: TunUdp | null = null;
  // the stack's timers and the UDP sweep, when due (built before the stack, which reports sooner deadlines to it)
  const timer: DeadlineTimer = new DeadlineTimer(
    () => performance.now(),
    (now) => {
      try {
        s.tick(now);
        relay.sweep(now);
      } catch (err) {
        s.drops.count(Drop.internal_error);
        if (errorLog.allow(now)) log.error({ err }, 'internal error in timers');
      }
    },
    () => Math.min(s.nextDeadline(), relay.nextSweep()),
  );
  const s = new Stack(dev, (c) => core.handle(new TunInbound(c, d ? d.hostnameOfEndpoint : undefined)), {
    ipv6: config.ipv6,
    maxConnections: config.maxConnections,
    maxHalfOpen: config.synBacklog,
    synCookies: config.synCookies,
    memoryBudget: config.memoryBudgetMb * 1024 * 1024,
    tcp: { rcvBuf: config.tcpRcvBuf, sndBuf: config.tcpSndBuf },
    clock: () => performance.now(),
    onSooner: (at) => timer.sooner(at),
    udp: { onDatagram: (k, b, o, l, now) => tunUdp!.onDatagram(k, b, o, l, now) },
  });
  text = (ip: number) => s.addressText(ip);
  const relay = new UdpSessions(
    s,
    {
      idleMs: config.udpIdleMs,
      maxFlows: config.maxUdpFlows,
      blockQuic: config.blockQuic,
      connectTimeoutMs: config.connectTimeoutMs,
      // null (no uplink of that family): its flows are rejected in admit below; both follow the network (network-update.ts)
      ...(config.localAddress ? { localAddress: config.localAddress } : {}),
      ...(config.localAddress6 ? { localAddress6: config.localAddress6 } : {}),
      ...(d ? { resolveTarget: d.resolveTarget } : {}),
      // direct, refused, or through a proxy rule's SOCKS5 upstream (UDP ASSOCIATE);
      // a QUIC Initial's SNI is its name, the client socket's owner is looked up when a rule reads it (src/proxy/udp-admission.ts)
      admit: (f, payload) => {
        // no uplink of the flow's family while everything goes into the TUN: an unbound socket would send into our own TUN (a loop)
        const v6 = text(f.serverIp).includes(':');
        if (v6 ? uplink.localAddress6 === null : uplink.localAddress === null) return { rule: v6 ? 'no IPv6 uplink' : 'no uplink', action: 'reject' };
        const flow = { hostname: hostOf(f.serverIp), dstAddress: text(f.serverIp), dstPort: f.serverPort, srcAddress: text(f.clientIp), srcPort: f.clientPort };
        // the rules in force when the flow starts (a reload swaps them for the next flow)
        return admitUdp(
          core.policy,
          flow,
          payload,
          (mapped, sni) => log.warn({ dst: `${flow.dstAddress}:${flow.dstPort}`, mapped, sni }, 'fake IP names another host: QUIC refused'),
          owners,
        );
      },
    },
    (e) => {
      d?.proxy.fakeAddressUsed(e.dst.slice(0, e.dst.lastIndexOf(':')).replace(/^\[|\]$/g, ''));
      log.info(udpFlowLine('tun', e), 'conn');
    },
  );
  const udp = (tunUdp = new TunUdp(s, d ? { address: dnsAt, answer: (q: Buffer) => d.dns.answer(q) } : null, relay));
  // With offloads (IFF_VNET_HDR) each packet starts with a virtio-net header; ours get one too (stack-output.ts: partial checksums, TSO)
  const hdrLen = dev.offload?.vnetHdrLen ?? 0;
  const vh = newVnetHdr();
  dev.start((batch) => {
    const now = performance.now();
    try {
      if (hdrLen === 0) for (let i = 0; i < batch.count; i++) s.input(batch.slots[i], 0, batch.lengths[i], now);
      else
        for (let i = 0; i < batch.count; i++) {
          const b = batch.slots[i];
          const n = batch.lengths[i];
          if (!readVnetHdr(b, 0, n, vh)) continue;
          s.input(b, hdrLen, n - hdrLen, now, checksumVouched(vh));
        }
      s.tick(now);
      relay.sweep(now);
    } catch (err) {
      // One guard per batch: a bug costs the rest of this batch, never the gateway.
      s.drops.count(Drop.internal_error);
      if (errorLog.allow(now)) log.error({ err }, 'internal error in packet input');
    }
    timer.arm();
  });
  // kill -USR2 PID: every connection's sequence space, windows and timers, one warn line each
  process.on('SIGUSR2', () => {
    for (const f of s.debugFlows()) log.warn(f, 'tcp debug');
  });

  return { stack: s, udp, relay, timer };
}

/** tproxy's UDP: direct, refused, or through a proxy rule's SOCKS5 upstream, logged like the TUN's UDP flows; the rules in force when a flow starts. Binds while still root. */
function startTproxyUdp(config: DataPlaneConfig, core: ProxyCore, log: Logger, port: number, owners: OwnerLookup): TproxyUdp {
  const udp = new TproxyUdp({
    idleMs: config.udpIdleMs,
    maxFlows: config.maxUdpFlows,
    connectTimeoutMs: config.connectTimeoutMs,
    // the TUN path's admission: a QUIC Initial's SNI is read, so name rules apply to HTTP/3 here too; a proxy rule's upstream; the owner
    admit: (src, dst, payload) => admitUdp(core.policy, { dstAddress: dst.address, dstPort: dst.port, srcAddress: src.address, srcPort: src.port }, payload, undefined, owners),
    onFlowEnd: (e) => log.info(udpFlowLine('tproxy', e), 'conn'),
    onError: (err) => log.error({ err }, 'tproxy UDP socket failed'),
  });
  udp.listen(port);
  return udp;
}

/** The stack's liveness check for an IPv6 address, where the stack has one (IPv6 stacks). */
function hasFlowsTo6(stack: Stack | null, address: string): boolean {
  const s = stack as (Stack & { hasFlowsToAddress?: (a: string) => boolean }) | null;
  return s?.hasFlowsToAddress?.(address) ?? false;
}
