// The gateway, as `tunsteer up` (and `tunsteer run`) starts it: open the TUN,
// make the mode's system changes (system-setup.ts, journalled before each
// step), run the data plane (src/data-plane) in a child process without root
// (supervisor.ts), and restore on every exit path (exit-handlers.ts): its own
// signals and errors, and the child's death (or restart it, --restart).
import { rmSync, mkdirSync } from 'node:fs';
import { pino } from 'pino';
import type { GatewaySettings } from '../config/settings.js';
import { ConfigError } from '../config/config-error.js';
import { buildPolicy, readPolicySecrets, type PolicySecrets } from '../config/build-policy.js';
import { ruleSetsOf } from '../config/rule-set-files.js';
import { readControlSecret } from '../config/control-secret.js';
import { runningConfig } from '../config/running-config.js';
import { createLogger, type Logger } from '../logging/log.js';
import { LogTap } from '../logging/log-tap.js';
import { openTun } from '../tun/open-tun.js';
import { adoptLinuxTun, type TunHandle } from '../tun/linux-tun.js';
import { offloadNames } from '../tun/tun-offload.js';
import type { TunDevice } from '../tun/tun-device.js';
import type { Policy } from '../proxy/policy.js';
import { netnsAt, RouteJournal } from '../routing/route-journal.js';
import { restoreFromJournal } from '../routing/restore.js';
// the data plane itself (stack, proxy core) is loaded only where it runs in this process (runInProcess):
// a supervisor with a data-plane child stays small (issue 16: an idle gateway's memory)
import type { DataPlane, LiveStatus } from '../data-plane/data-plane.js';
import type { DataPlaneConfig, LiveConfig } from '../data-plane/config.js';
import type { NetworkUpdate, ReloadResult } from '../data-plane/ipc.js';
import { withTestFaults } from '../data-plane/test-faults.js';
import { installExitHandlers } from './exit-handlers.js';
import { dataPlaneUser } from './privileges.js';
import { addressing, dryRunPlan, setUpSystem, type SystemSetup } from './system-setup.js';
import { Supervisor } from './supervisor.js';
import { NetworkFollower } from './follow-network.js';
import { sharedResolvConfProblem } from './resolv-conf-owner.js';
import { statusPath, writeStatus, type StatusSnapshot } from './state/status-file.js';
import { loadFakeIps, saveFakeIps } from './state/fake-ip-file.js';
import { Reloader } from './reloader.js';
import { reloadSocketPath, serveReloadSocket } from './reload-socket.js';

let settleInProcess: (maxMs: number) => Promise<void> = async () => {};

/** For `tunsteer run`: once its program is gone, let the in-process data plane finish (and log) what is still open. */
export function settleDataPlane(maxMs: number): Promise<void> {
  return settleInProcess(maxMs);
}

/**
 * onSignal: who ends the process on SIGINT/SIGTERM/SIGHUP instead of the
 * restore-and-exit (tunsteer run: its program, whose exit status run exits with).
 * reread: the settings as the config file (under the same flags) gives them
 * now, for reloads (SIGHUP, `tunsteer reload`, the control API); absent
 * (tunsteer run), the gateway cannot reload.
 */
export async function runGateway(s: GatewaySettings, hooks: { onSignal?: (code: number, signal: string) => void; reread?: () => GatewaySettings } = {}): Promise<number> {
  const { reread } = hooks;
  const a = addressing(s);
  if (s.dryRun) {
    process.stdout.write(dryRunPlan(s, a).join('\n') + '\n');
    return 0;
  }
  const held = new RouteJournal(s.stateDir).holder();
  if (held !== null) {
    process.stderr.write(`tunsteer: a gateway (pid ${held}) already runs with state dir ${s.stateDir}\n`);
    return 1;
  }

  if (s.mode === 'per-host' && !s.sharedResolvConf) {
    // before anything changes: the resolver file must be this namespace's own
    const shared = sharedResolvConfProblem(s.resolvConf);
    if (shared) throw new ConfigError(`--resolv-conf: ${shared}`);
  }
  if (s.netns && !s.ephemeralNetns) {
    try {
      netnsAt(s.netns);
    } catch (e) {
      throw new ConfigError(`--netns/--pid: ${s.netns} is not a network namespace (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }
  // secrets and upstreams are read before anything changes on the system
  const secrets = readPolicySecrets(s.config);
  const policyData = { rules: s.config.rules, upstreams: s.config.upstreams, ...(s.config.rule_sets ? { rule_sets: s.config.rule_sets } : {}), secrets };
  // with stack workers (in this process: tunsteer run) each rule-set keeps its text: every worker compiles its own copy from it
  const policy = buildPolicy(policyData, ruleSetsOf(policyData, s.workers > 1));
  const controlSecret = readControlSecret(s.control);
  // `tunsteer run` keeps its program's stdout clean: the gateway logs to stderr there
  const logTo = pino.destination({ dest: s.ephemeralNetns ? 2 : 1, sync: true });
  // a data plane in this process streams its log lines to the control API
  const logs = s.control ? new LogTap() : undefined;
  const log = createLogger(s.logLevel, logs ? logs.destination(logTo) : logTo);
  // the data plane runs as a child (crash-safe routing, least privilege) unless
  // its TUN lives in a namespace of its own (tunsteer run: nothing to restore
  // outside it) or the backend cannot hand its fd over (tuntap2)
  const intercepting = s.mode === 'redirect' || s.mode === 'tproxy';
  const split = !s.ephemeralNetns && (s.tunBackend === 'native' || intercepting);
  const dropTo = split ? dataPlaneUser(s) : null;
  rmSync(statusPath(s.stateDir), { force: true });
  // redirect and tproxy need no TUN: nftables brings the connections to a listener
  const tun = intercepting
    ? null
    : s.adoptTun
      ? adoptLinuxTun(s.adoptTun.fd, s.adoptTun.name, { mtu: s.mtu })
      : await openTun({
          backend: s.tunBackend,
          name: s.tunName,
          mtu: s.mtu,
          offload: s.tunOffload,
          addresses: [a.tunAddress, ...(a.tunAddress6 && !s.ephemeralNetns ? [a.tunAddress6] : [])],
          netns: s.netns,
          // a queue per stack worker (the tuntap2 backend has one)
          ...(s.tunBackend === 'native' ? { queues: s.workers, onSteeringError: (err: Error) => log.warn({ err: err.message }, 'tun steering') } : {}),
        });
  if (s.tunOffload && tun) log.info({ offloads: offloadNames(tun.offload) }, 'tun offloads');
  let stopDataPlane: (() => number) | null = null;
  let supervisor: Supervisor | null = null;
  let follower: NetworkFollower | null = null;
  let reloader: Reloader | null = null;
  const reload = (by: string, force: boolean): Promise<ReloadResult> =>
    reloader
      ? reloader.reload(by, force)
      : Promise.resolve({ ok: false, refused: 'unsupported', problems: ['this gateway cannot reload: start it with tunsteer up'], applied: [], routing: [], restart: [], ms: 0 });
  // the stop in two lines: "restoring" when it begins, "restored, N connections closed" once all is back
  let restoring = false;
  const logRestoring = (why: string) => {
    if (restoring) return;
    restoring = true;
    log.info({ why }, 'restoring');
  };
  installExitHandlers(
    (why) => {
      logRestoring(why);
      let closed: number;
      let undone: number;
      try {
        follower?.stop();
        closed = stopDataPlane?.() ?? 0;
      } finally {
        undone = restoreFromJournal(s.stateDir, { ownOnly: true }).undone;
        rmSync(statusPath(s.stateDir), { force: true });
        if (reread) rmSync(reloadSocketPath(s.stateDir), { force: true });
        tun?.close();
        // tunsteer run: its state dir is its own, made for this one run; the data plane's last save is done
        if (s.ephemeralNetns) rmSync(s.stateDir, { recursive: true, force: true });
      }
      log.info({ closed, undone }, `restored, ${closed} connection${closed === 1 ? '' : 's'} closed`);
    },
    {
      onError: (err, what) => log.fatal({ err, what }, what === 'restore' ? 'restoring routes failed' : 'gateway failed; routes restored'),
      // a child data plane is asked to stop and given time to reset its connections first
      onSignal: split
        ? (code, signal) => {
            logRestoring(signal);
            if (supervisor) void supervisor.shutdown(code);
            else process.exit(code);
          }
        : hooks.onSignal,
      // `up` reloads its config on SIGHUP (`tunsteer run` ends on it, as its program does)
      onHangup: reread ? () => void reload('SIGHUP', false) : undefined,
    },
  );

  const system = setUpSystem(s, a, tun?.name, dropTo?.uid ?? 0, log);
  const config: DataPlaneConfig = {
    ...dataPlaneConfig(s, a.tunIpv6, system, loadFakeIps(s.stateDir), secrets, controlSecret),
    // the queues are ours to choose (src/tun/native/steering.c): a UDP flow's fragments reach its worker
    ...(tun?.steering ? { tunSteering: true } : {}),
  };
  const startedAt = new Date().toISOString();
  const snapshot = (live: LiveStatus, extra: Partial<StatusSnapshot> = {}): StatusSnapshot => ({
    pid: process.pid,
    mode: s.mode,
    tun: tun ? { name: tun.name, mtu: tun.mtu, address: a.tunAddress } : { name: '', mtu: 0, address: '' },
    // route-all follows the network: the uplink now (null: none), and each change with its time
    uplink: follower && system.follow?.route?.binds ? follower.state.uplink : system.uplink,
    ...(follower ? { network: follower.state } : {}),
    startedAt,
    updatedAt: new Date().toISOString(),
    ...live,
    ...extra,
  });
  let notify: (u: NetworkUpdate) => void;
  let apply: (live: LiveConfig) => Promise<void>;
  if (split) {
    supervisor = new Supervisor({ settings: s, config, tun, user: dropTo, log, snapshot, reload: (force) => reload('control API', force) });
    stopDataPlane = () => {
      supervisor?.killNow();
      return supervisor?.closedAtStop ?? 0;
    };
    await supervisor.start();
    notify = (u) => supervisor!.send(u);
    apply = (live) => supervisor!.apply(live);
  } else {
    const dp = await runInProcess(s, config, tun, policy, log, snapshot, (force) => reload('control API', force), logs);
    stopDataPlane = () => dp.stop();
    settleInProcess = (ms) => dp.settle(ms);
    notify = (u) => dp.update(u);
    apply = async (live) => dp.apply(live);
  }
  if (system.follow) {
    follower = new NetworkFollower({ log, ...system.follow, ...(tun ? { tunName: tun.name } : {}), notify });
    follower.start();
  }
  if (reread) {
    const f = follower;
    reloader = new Reloader({
      settings: s,
      reread,
      liveConfig,
      apply,
      // route-all's excludes follow through the journal, as the uplink does
      ...(f && system.follow?.route ? { replan: (excludes: string[]) => f.replan(excludes) } : {}),
      log,
    });
    serveReloadSocket(
      s.stateDir,
      (by, force) => reload(by, force),
      (err) => log.error({ err: err.message }, 'the reload socket failed: tunsteer reload will not reach this gateway (SIGHUP still reloads)'),
    );
  }
  log.info(
    {
      mode: s.mode,
      tun: tun?.name,
      mtu: tun?.mtu,
      // per-host has no uplink of its own: its sockets follow the main table
      ...(s.mode === 'per-host' ? {} : { uplink: system.uplink }),
      ...(system.uplink6 !== undefined ? { uplink6: system.uplink6 } : {}),
      ipv6: s.ipv6,
      // where names the gateway does not map are forwarded
      ...(system.dns ? { dns: system.dns.address === '*' ? 'answers DNS to any address' : system.dns.address, resolvers: system.dns.upstreams } : {}),
      plan: system.plan,
    },
    'gateway up',
  );
  return -1;
}

/**
 * The data plane's config: the settings it runs with, what the system setup
 * made, the fake-IP mappings a previous run saved. No undefined fields: it
 * arrives in the child exactly as built.
 */
export function dataPlaneConfig(
  s: GatewaySettings,
  tunIpv6: boolean,
  system: SystemSetup,
  fakeIps: unknown,
  secrets: PolicySecrets = readPolicySecrets(s.config),
  controlSecret?: string,
): DataPlaneConfig {
  return {
    ...liveConfig(s, secrets),
    ...(s.netns ? { clientNetns: s.netns } : {}),
    tcpRcvBuf: s.tcpRcvBuf,
    tcpSndBuf: s.tcpSndBuf,
    // IPv6 relayed only when asked for and the TUN can carry it; else the stack refuses it and no AAAA fakes are given
    ipv6: s.ipv6 && tunIpv6,
    fakePool: s.fakePool,
    fakePool6: s.fakePool6,
    fakeIpHoldMs: s.fakeIpHoldMs,
    ...(fakeIps !== undefined ? { fakeIps } : {}),
    ...(system.localAddress !== undefined ? { localAddress: system.localAddress } : {}),
    ...(system.localAddress6 !== undefined ? { localAddress6: system.localAddress6 } : {}),
    ...(system.dns ? { dns: { ...system.dns, tcpIdleMs: s.dnsTcpIdleMs } } : {}),
    ...(system.intercept ? { intercept: system.intercept } : {}),
    ...(s.listen ? { listen: s.listen } : {}),
    ...(s.metrics ? { metrics: s.metrics } : {}),
    ...(s.control ? { control: { host: s.control.host, port: s.control.port, ...(controlSecret !== undefined ? { secret: controlSecret } : {}) } } : {}),
    about: { mode: s.mode, plan: system.plan },
  };
}

/** What a reload swaps in a running data plane (config.ts LIVE_KEYS), from the settings and the secrets they name. */
export function liveConfig(s: GatewaySettings, secrets: PolicySecrets): LiveConfig {
  const { rules, upstreams, rule_sets } = s.config;
  return {
    logLevel: s.logLevel,
    policy: { ...(rules ? { rules } : {}), ...(upstreams ? { upstreams } : {}), ...(rule_sets ? { rule_sets } : {}), secrets },
    connectTimeoutMs: s.connectTimeoutMs,
    sniffTimeoutMs: s.sniffTimeoutMs,
    httpInspect: s.httpInspect,
    maxConnections: s.maxConnections,
    synBacklog: s.synBacklog,
    synCookies: s.synCookies,
    memoryBudgetMb: s.memoryBudgetMb,
    udpIdleMs: s.udpIdleMs,
    maxUdpFlows: s.maxUdpFlows,
    blockQuic: s.blockQuic,
    hosts: s.hosts,
    running: runningConfig(s),
  };
}

/**
 * The data plane in this process, where the TUN cannot be handed to a child
 * (tunsteer run: it lives in the program's namespace; the tuntap2 backend):
 * it reports straight into the state dir.
 */
async function runInProcess(
  s: GatewaySettings,
  config: DataPlaneConfig,
  tun: TunHandle | null,
  policy: Policy,
  log: Logger,
  snapshot: (live: LiveStatus) => StatusSnapshot,
  reload: (force: boolean) => Promise<ReloadResult>,
  logs: LogTap | undefined,
): Promise<DataPlane> {
  const queues = tun?.fds && tun.fds.length > 1 ? { fds: tun.fds, name: tun.name, mtu: tun.mtu } : undefined;
  const dev: TunDevice | null = withTestFaults(queues ? null : tun, log);
  mkdirSync(s.stateDir, { recursive: true });
  const { startDataPlane } = await import('../data-plane/data-plane.js');
  return startDataPlane(config, dev, policy, {
    log,
    ...(queues ? { queues } : {}),
    // tunsteer run logs to stderr (its program's stdout stays clean): the workers too
    logFd: s.ephemeralNetns ? 2 : 1,
    publish: (live) => writeStatus(s.stateDir, snapshot(live)),
    saveFakeIps: (data) => saveFakeIps(s.stateDir, data),
    reload,
    ...(logs ? { logs } : {}),
  });
}
