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
import type { ProxyCore } from '../proxy/proxy-core.js';
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
import { applyNetworkUpdate, probeUpstreams, type LiveUplink } from './network-update.js';
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
import { offloadNames } from '../tun/tun-offload.js';
import { startStack, hasFlowsTo6 } from './tun-stack.js';
import { makeProxyCore } from './make-core.js';
import { StackWorkers } from './workers/worker-pool.js';
import type { PreloadedWorker } from './workers/worker-thread.js';
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
  /** Which process holds a socket; default: search /proc here (a child without root asks its supervisor). */
  findProcess?: (inode: number, uid: number) => Promise<ProcessInfo | null>;
  /** Called after a rule-set file was reloaded and swapped in (the config reload's hook). */
  onRuleSetReload?: (name: string) => void;
  /** The control API's reload (PUT /configs): the supervisor's, which reads the config file. Absent: this gateway cannot reload. */
  reload?(force: boolean): Promise<ReloadResult>;
  /** The log lines the control API streams (GET /logs); the logger must write through it. */
  logs?: LogTap;
  /**
   * The TUN's queues, when it has more than one: each gets a stack worker
   * thread (workers/), and `dev` is not read. Their fds stay open for the
   * process's life (the device outlives a worker that dies).
   */
  queues?: { fds: readonly number[]; name: string; mtu: number };
  /** The fd the log writes to (workers write their connections' lines there too); default 1. */
  logFd?: number;
  /** The queues' worker threads, started (and their modules loading) before the config came: child.ts. */
  preloaded?: PreloadedWorker[];
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
  /**
   * A reload: swap these in for new connections and requests (live-apply.ts);
   * rejects, changing nothing, if they cannot be built here or in any stack
   * worker (the error names the worker). Resolves once every worker has them.
   */
  apply(live: LiveConfig): Promise<void>;
}

/** dev is null in redirect and tproxy modes: connections come from a listener, not from a TUN. */
export async function startDataPlane(config: DataPlaneConfig, dev: TunDevice | null, policy: Policy, host: DataPlaneHost): Promise<DataPlane> {
  const { log } = host;
  let stack: Stack | null = null;
  // where upstream sockets bind: the proxy core reads it at each dial, so it follows the network (update below)
  const uplink: LiveUplink = { localAddress: config.localAddress, localAddress6: config.localAddress6 };
  let d: GatewayDns | null = null;
  // sock_diag answers in this process's namespace: where the TUN's or the redirected clients' sockets are
  const owners = new OwnerResolver({ ...(host.findProcess ? { findProcess: host.findProcess } : {}), ...(config.clientNetns ? { netns: config.clientNetns } : {}) });
  // entering another namespace takes privileges the data plane gives up once started
  if (config.clientNetns) owners.open();
  // more than one TUN queue: a stack worker each; this thread keeps the DNS, the fake-IP pool and the owner lookups
  let target: LiveTarget | null = null;
  const workers =
    host.queues && host.queues.fds.length > 1
      ? new StackWorkers({
          tun: host.queues,
          log,
          logFd: host.logFd ?? 1,
          ...(host.logs ? { logs: host.logs } : {}),
          ...(host.preloaded ? { preloaded: host.preloaded } : {}),
          uplink,
          dns: () => d,
          owners,
          current: () => ({ config: target!.config, policy: target!.core.policy }),
        })
      : null;
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
  // the policy's rule-set files are watched (here, for the workers too); a reload's new policy brings its own (target.onPolicy below)
  const watchSets = (p: Policy) => {
    const liveSets = [...p.ruleSets.values()].filter((r): r is LiveRuleSet => r instanceof LiveRuleSet);
    const onReload = (r: LiveRuleSet) => {
      workers?.swapRuleSet(r);
      host.onRuleSetReload?.(r.name);
    };
    return liveSets.length ? watchRuleSets(new Map(liveSets.map((r) => [r.name, r])), { log, onReload }) : null;
  };
  let stopWatching = watchSets(policy);
  const core = makeProxyCore(config, policy, log, d, destinations, uplink, owners);
  const tun = dev && !workers ? startStack(config, dev, core, d, log, uplink, owners) : null;
  const s = (stack = tun?.stack ?? null);
  const intercept = config.intercept ? new InterceptInbound(core, config.intercept.kind) : null;
  if (intercept) await intercept.listen(config.intercept!.port);
  const udpTproxy = config.intercept?.kind === 'tproxy' ? startTproxyUdp(config, core, log, config.intercept.port, owners) : null;
  target = {
    core,
    stack: s,
    relay: tun?.relay ?? null,
    dns: d,
    log,
    config,
    keepRuleSetText: workers !== null,
    onPolicy: (p) => {
      stopWatching?.();
      stopWatching = watchSets(p);
    },
  };
  const live: LiveTarget = target;
  if (workers) {
    await workers.start();
    // kill -USR2 PID: every connection's state, from each worker
    process.on('SIGUSR2', () => workers.debug());
  }
  const offloads = () => (workers ? workers.offloads : offloadNames(dev?.offload));
  let lastLive: LiveStatus = { counters: {}, drops: {} };
  let reloads: Promise<unknown> = Promise.resolve();

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
  const publish = () => {
    const next: LiveStatus = {
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
        // with workers, this thread reads no queue: the offloads are those the workers found on theirs
        ...Object.fromEntries(offloads().map((k) => [`tun_offload_${k}`, 1])),
        ...(config.tunSteering ? { tun_steering: 1 } : {}),
      },
      drops: s ? Object.fromEntries(s.drops.entries()) : {},
    };
    if (workers) {
      const w = workers.totals();
      addInto(next.counters, w.counters);
      addInto(next.drops, w.drops);
      Object.assign(next.counters, workers.perWorker());
    }
    host.publish((lastLive = next));
  };
  publish();
  setInterval(() => {
    idleGc.sample(Math.max(s?.connections ?? 0, core.counters.active + (workers?.active ?? 0)), performance.now());
    publish();
  }, STATUS_MS).unref();
  if (config.listen) await new ExplicitProxy(core).listen(config.listen.host, config.listen.port);
  if (config.metrics) {
    const stackView = () => (workers ? workers.totals() : { counters: { ...s?.counters }, drops: s ? Object.fromEntries(s.drops.entries()) : {} });
    // prom-client only with --metrics: it costs every process about 13 MB of RSS
    const { metricsRegistry, serveMetrics } = await import('./metrics.js');
    await serveMetrics(config.metrics, metricsRegistry({ proxy: workers ? workers.proxyView(core) : core, stack: stackView }));
  }
  let control: ControlServer | null = null;
  if (config.control) {
    // loaded only when asked for: most gateways run without it, and each start pays for what it imports
    const [{ ControlServer }, { controlContext }] = await Promise.all([import('../control/control-server.js'), import('./control-context.js')]);
    const startedAt = new Date().toISOString();
    control = new ControlServer(
      controlContext({
        config: () => live.config,
        core,
        ...(workers ? { sources: workers.sources(), hits: () => workers.hits(core), onLogLevel: (level: string) => workers.setLogLevel(level) } : {}),
        dns: d,
        log,
        logs: host.logs ?? new LogTap(),
        status: () => ({
          mode: config.about?.mode,
          // with workers this thread reads no queue: the device is the queues'
          device: dev ? { name: dev.name, mtu: dev.mtu } : host.queues ? { name: host.queues.name, mtu: host.queues.mtu } : null,
          routes: config.about?.plan ?? [],
          offloads: offloads(),
          workers: workers?.count ?? 1,
          uplink,
          startedAt,
          connections: core.connections.size + (workers?.active ?? 0),
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
    update: (u) => {
      if (workers && u.type === 'wake') {
        // every thread probes its own upstream sockets; one line says how many in all
        const here = probeUpstreams();
        void workers.probeAfterWake(u.sleptMs).then((inWorkers) => log.info({ sleptMs: u.sleptMs, probed: here + inWorkers }, 'data plane: woke; probing upstream connections'));
        return;
      }
      applyNetworkUpdate(u, { uplink, udp: tun?.relay ?? null, dns: d, log });
      workers?.update(u);
    },
    apply: (next) => {
      // one reload at a time: each starts from what the one before left in force
      const run = reloads.then(() => (workers ? workers.reconfigure(live, next) : applyLive(live, next)));
      reloads = run.catch(() => {});
      return run;
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
      // the workers' connections first: each logs and resets its own, this thread waits for them
      const inWorkers = workers?.stop() ?? 0;
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
      return tcp + (udpStopped - udpBefore) + inWorkers;
    },
  };
}

/** Adds src's counts into target's, key by key. */
function addInto(target: Record<string, number>, src: Record<string, number>): void {
  for (const [k, v] of Object.entries(src)) target[k] = (target[k] ?? 0) + v;
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
