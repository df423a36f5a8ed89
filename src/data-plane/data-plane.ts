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
import type { Stack } from '../stack/stack.js';
import type { Policy } from '../proxy/policy.js';
import { ExplicitProxy } from '../proxy/explicit-proxy.js';
import { DestinationCheck, resolverLookup } from '../proxy/destination-check.js';
import { metricsRegistry, serveMetrics } from './metrics.js';
import { InterceptInbound } from '../proxy/intercept-inbound.js';
import { TproxyUdp } from '../proxy/tproxy-udp.js';
import { IdleGc } from './idle-gc.js';
import type { DataPlaneConfig } from './config.js';
import { gatewayDns, type GatewayDns } from './gateway-dns.js';
import { memoryCounters, prefixed } from './counters.js';
import type { NetworkUpdate } from './ipc.js';
import { applyNetworkUpdate, type LiveUplink } from './network-update.js';
import { startStack, hasFlowsTo6 } from './tun-stack.js';
import { makeProxyCore } from './make-core.js';
import { StackWorkers } from './workers/worker-pool.js';
import { STOP_END, udpFlowLine, udpStopped } from './stop-end.js';

const STATUS_MS = 1000;
export { STOP_END };

export interface LiveStatus {
  counters: Record<string, number>;
  drops: Record<string, number>;
}

/** Where the data plane reports to: a file writer in-process, IPC messages in a child. */
export interface DataPlaneHost {
  log: Logger;
  publish(live: LiveStatus): void;
  saveFakeIps(data: unknown): void;
  /**
   * The TUN's queues, when it has more than one: each gets a stack worker
   * thread (workers/), and `dev` is not read. Their fds stay open for the
   * process's life (the device outlives a worker that dies).
   */
  queues?: { fds: readonly number[]; name: string; mtu: number };
  /** The fd the log writes to (workers write their connections' lines there too); default 1. */
  logFd?: number;
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
  // where upstream sockets bind: the proxy core reads it at each dial, so it follows the network (update below)
  const uplink: LiveUplink = { localAddress: config.localAddress, localAddress6: config.localAddress6 };
  let d: GatewayDns | null = null;
  const workers = host.queues && host.queues.fds.length > 1 ? new StackWorkers({ config, policy, tun: host.queues, log, logFd: host.logFd ?? 1, uplink, dns: () => d }) : null;
  const liveTo = (ip: number, ip6: string | null) => (stack?.hasFlowsTo(ip) ?? false) || (ip6 !== null && hasFlowsTo6(stack, ip6)) || (workers?.liveTo(ip) ?? false);
  // where secret headers may go: addresses the gateway resolved (or told a client) for a name
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
        workers?.news,
      )
    : null;
  const core = makeProxyCore(config, policy, log, d, destinations, uplink);
  const tun = dev && !workers ? startStack(config, dev, policy, core, d, log, uplink) : null;
  if (workers) {
    await workers.start();
    // kill -USR2 PID: every connection's state, from each worker
    process.on('SIGUSR2', () => workers.debug());
  }
  const s = (stack = tun?.stack ?? null);
  const intercept = config.intercept ? new InterceptInbound(core, config.intercept.kind) : null;
  if (intercept) await intercept.listen(config.intercept!.port);
  const udpTproxy = config.intercept?.kind === 'tproxy' ? startTproxyUdp(config, policy, log, config.intercept.port) : null;

  const idleGc = new IdleGc((globalThis as { gc?: () => void }).gc);
  const publish = () => {
    const counters: Record<string, number> = {
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
    };
    const drops: Record<string, number> = s ? Object.fromEntries(s.drops.entries()) : {};
    if (workers) {
      const w = workers.totals();
      addInto(counters, w.counters);
      addInto(drops, w.drops);
    }
    host.publish({ counters, drops });
  };
  publish();
  setInterval(() => {
    idleGc.sample(Math.max(s?.connections ?? 0, core.counters.active + (workers?.active ?? 0)), performance.now());
    publish();
  }, STATUS_MS).unref();
  if (config.listen) await new ExplicitProxy(core).listen(config.listen.host, config.listen.port);
  if (config.metrics) {
    const stackView = () => (workers ? workers.totals() : { counters: { ...s?.counters }, drops: s ? Object.fromEntries(s.drops.entries()) : {} });
    await serveMetrics(config.metrics, metricsRegistry({ proxy: workers ? workers.proxyView(core) : core, stack: stackView }));
  }
  return {
    update: (u) => {
      applyNetworkUpdate(u, { uplink, udp: tun?.relay ?? null, dns: d, log });
      workers?.update(u);
    },
    async settle(maxMs) {
      const open = () => core.counters.active + (workers?.active ?? 0);
      for (const until = Date.now() + maxMs; open() > 0 && Date.now() < until;) {
        workers?.report();
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop() {
      const tcp = core.counters.active;
      const udpBefore = udpStopped;
      let inWorkers = 0;
      try {
        inWorkers = workers?.stop() ?? 0;
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
      return tcp + (udpStopped - udpBefore) + inWorkers;
    },
  };
}

/** Adds src's counts into target's, key by key. */
function addInto(target: Record<string, number>, src: Record<string, number>): void {
  for (const [k, v] of Object.entries(src)) target[k] = (target[k] ?? 0) + v;
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
