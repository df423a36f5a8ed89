// `tunsteer up`: open the TUN, run the stack and the proxy core, install the
// routing plan (journalled before each step), and restore on every exit path.
import { performance } from 'node:perf_hooks';
import { rmSync } from 'node:fs';
import type { UpArgs } from './cli-args.js';
import { createLogger } from './log.js';
import { openTun } from './tun/open-tun.js';
import { Stack } from './stack/stack.js';
import { Drop } from './stack/drop-counters.js';
import { RateLimit } from './rate-limit.js';
import { ProxyCore } from './proxy/proxy-core.js';
import { dryRunRouteAll, upRouteAll } from './routing/route-all.js';
import { RouteJournal } from './routing/route-journal.js';
import { installExitHandlers, restoreFromJournal } from './routing/restore.js';
import type { RoutePlanConfig } from './routing/route-plan.js';
import { statusPath, writeStatus, type StatusSnapshot } from './status-file.js';

const TICK_MS = 10;

export async function runUp(args: UpArgs): Promise<number> {
  const planCfg: RoutePlanConfig = {
    tunName: args.tunName,
    table: args.table,
    priorityBase: args.rulePriority,
    excludes: args.excludes,
  };
  if (args.dryRun) {
    const { lines } = dryRunRouteAll(planCfg);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  }
  const held = new RouteJournal(args.stateDir).holder();
  if (held !== null) {
    process.stderr.write(`tunsteer: a gateway (pid ${held}) already runs with state dir ${args.stateDir}\n`);
    return 1;
  }

  const log = createLogger(args.logLevel);
  const dev = await openTun({ backend: args.tunBackend, name: args.tunName, mtu: args.mtu, addresses: [args.tunAddress] });
  let stack: Stack | null = null;
  installExitHandlers(
    () => {
      try {
        stack?.abortAll();
        stack?.udp?.closeAll();
        dev.flushTx();
      } finally {
        restoreFromJournal(args.stateDir, { ownOnly: true });
        rmSync(statusPath(args.stateDir), { force: true });
        dev.close();
      }
    },
    (err, what) => log.fatal({ err, what }, what === 'restore' ? 'restoring routes failed' : 'gateway failed; routes restored'),
  );

  // The stack is ready before any route points at it.
  const route = upRouteAll({ ...planCfg, stateDir: args.stateDir, log: (l) => log.warn(l) });
  const core = new ProxyCore({ log, localAddress: route.uplink.source, connectTimeoutMs: args.connectTimeoutMs });
  const errorLog = new RateLimit(10_000);
  const s = (stack = new Stack(dev, (c) => core.handle(c), {
    maxConnections: args.maxConnections,
    tcp: { rcvBuf: args.tcpRcvBuf, sndBuf: args.tcpSndBuf },
    udp: {
      localAddress: route.uplink.source,
      idleMs: args.udpIdleMs,
      maxFlows: args.maxUdpFlows,
      blockQuic: args.blockQuic,
    },
    onUdpFlowEnd: (e) => log.info({ inbound: 'tun', proto: 'udp', rule: 'default', action: 'direct', ...e }, 'conn'),
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

  const startedAt = new Date().toISOString();
  const publish = () => {
    const snap: StatusSnapshot = {
      pid: process.pid,
      mode: args.mode,
      tun: { name: dev.name, mtu: dev.mtu, address: args.tunAddress },
      uplink: route.uplink,
      startedAt,
      updatedAt: new Date().toISOString(),
      counters: { ...s.counters, connections: s.connections, ...s.udp?.counters, ...prefixed('proxy_', core.counters) },
      drops: Object.fromEntries(s.drops.entries()),
    };
    writeStatus(args.stateDir, snap);
  };
  publish();
  setInterval(publish, 1000).unref();
  log.info(
    { mode: args.mode, tun: dev.name, mtu: dev.mtu, uplink: route.uplink, plan: route.steps.map((st) => st.desc) },
    'gateway up',
  );
  return -1;
}

function prefixed(p: string, o: object): Record<string, number> {
  const r: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) r[p + k] = v as number;
  return r;
}
