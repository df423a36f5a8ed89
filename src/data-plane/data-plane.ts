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
  d = config.dns ? gatewayDns(config, config.dns.upstreams, liveTo, (data) => host.saveFakeIps(data), destinations, (f) => log.warn(f, 'dns lookup failed')) : null;
  const core = new ProxyCore({
    log,
    connectTimeoutMs: config.connectTimeoutMs,
    policy,
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
  const tun = dev ? startStack(config, dev, policy, core, d, log, uplink) : null;
  const s = (stack = tun?.stack ?? null);
  const intercept = config.intercept ? new InterceptInbound(core, config.intercept.kind) : null;
  if (intercept) await intercept.listen(config.intercept!.port);
  const udpTproxy = config.intercept?.kind === 'tproxy' ? startTproxyUdp(config, policy, log, config.intercept.port) : null;

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
        ...(intercept ? prefixed(`${config.intercept!.kind}_`, intercept.counters) : {}),
        ...(udpTproxy ? prefixed('tproxy_', udpTproxy.counters) : {}),
        ...(dev instanceof FaultyTun ? { ...prefixed('fault_rx_', dev.counters.rx), ...prefixed('fault_tx_', dev.counters.tx) } : {}),
        ...d?.counters(),
        ...memoryCounters(),
        mem_idle_gcs: idleGc.runs,
        timer_wakes: tun?.timer.wakes ?? 0,
        ...Object.fromEntries(offloadNames(dev?.offload).map((k) => [`tun_offload_${k}`, 1])),
      },
      drops: s ? Object.fromEntries(s.drops.entries()) : {},
    });
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
  return {
    update: (u) => applyNetworkUpdate(u, { uplink, udp: tun?.relay ?? null, dns: d, log }),
    async settle(maxMs) {
      for (const until = Date.now() + maxMs; core.counters.active > 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 10));
    },
    stop() {
      const tcp = core.counters.active;
      const udpBefore = udpStopped;
      try {
        // their lines first, while this process can still write them: what follows ends them for good
        core.finishAll(STOP_END);
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

function startStack(config: DataPlaneConfig, dev: TunDevice, policy: Policy, core: ProxyCore, d: GatewayDns | null, log: Logger, uplink: LiveUplink) {
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
      // null (no uplink of that family): its flows are rejected in admit below; both follow the network (network-update.ts)
      ...(config.localAddress ? { localAddress: config.localAddress } : {}),
      ...(config.localAddress6 ? { localAddress6: config.localAddress6 } : {}),
      ...(d ? { resolveTarget: d.resolveTarget } : {}),
      // UDP is relayed direct: a proxy rule cannot carry it (no SOCKS5 UDP yet), so only reject applies;
      // a QUIC Initial's SNI is its name (src/proxy/udp-admission.ts)
      admit: (f, payload) => {
        // no uplink of the flow's family while everything goes into the TUN: an unbound socket would send into our own TUN (a loop)
        const v6 = text(f.serverIp).includes(':');
        if (v6 ? uplink.localAddress6 === null : uplink.localAddress === null) return { rule: v6 ? 'no IPv6 uplink' : 'no uplink', action: 'reject' };
        const flow = { hostname: hostOf(f.serverIp), dstAddress: text(f.serverIp), dstPort: f.serverPort, srcAddress: text(f.clientIp) };
        return admitUdp(policy, flow, payload, (mapped, sni) => log.warn({ dst: `${flow.dstAddress}:${flow.dstPort}`, mapped, sni }, 'fake IP names another host: QUIC refused'));
      },
    },
    (e) => {
      d?.proxy.fakeAddressUsed(e.dst.slice(0, e.dst.lastIndexOf(':')).replace(/^\[|\]$/g, ''));
      log.info(udpFlowLine('tun', e), 'conn');
    },
  );
  const udp = (tunUdp = new TunUdp(s, d ? { address: dnsAt, answer: (q: Buffer) => d.dns.answer(q) } : null, relay));
  // With offloads (IFF_VNET_HDR) each packet starts with a virtio-net header; ours go out with a zero one (txHeader)
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

/** tproxy's UDP: relayed direct unless a rule rejects it (no SOCKS5 UDP), logged like the TUN's UDP flows. Binds while still root. */
function startTproxyUdp(config: DataPlaneConfig, policy: Policy, log: Logger, port: number): TproxyUdp {
  const udp = new TproxyUdp({
    idleMs: config.udpIdleMs,
    maxFlows: config.maxUdpFlows,
    admit: (src, dst) => {
      const dec = policy.decide({ protocol: 'udp', dstAddress: dst.address, dstPort: dst.port, srcAddress: src.address });
      return { rule: dec.rule, action: dec.action === 'reject' ? 'reject' : 'direct' };
    },
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
