// The supervisor's side of the data plane: one child process that gets the
// TUN's fd and a plain-data description of the system changes, drops root,
// and reports status over IPC. The supervisor keeps its own copy of the fd,
// so the device and the routes through it outlive a child that dies: they are
// restored at once, or the child is restarted within a second (--restart).
import { spawn, type ChildProcess } from 'node:child_process';
import type { GatewaySettings } from '../config/settings.js';
import type { Logger } from '../logging/log.js';
import type { TunHandle } from '../tun/linux-tun.js';
import type { LiveStatus } from '../data-plane/data-plane.js';
import type { DataPlaneConfig, LiveConfig } from '../data-plane/config.js';
import type { Identity } from '../data-plane/drop-root.js';
import { CHILD_TUN_FD, type ChildInit, type ChildMessage, type NetworkUpdate, type ProcessFound, type ReloadMessage, type ReloadResult } from '../data-plane/ipc.js';
import { ProcSockets } from '../owner/proc-sockets.js';
import { writeStatus, type StatusSnapshot } from './state/status-file.js';
import { loadFakeIps, saveFakeIps } from './state/fake-ip-file.js';

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3000;
/** More restarts than this within RESTART_WINDOW_MS: give up and restore. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;
/** A data plane that has not swapped a reload's config in by then is taken not to have. */
const APPLY_TIMEOUT_MS = 10_000;

export interface SupervisorOptions {
  settings: Pick<GatewaySettings, 'restart' | 'stateDir' | 'listen' | 'metrics' | 'control'>;
  config: DataPlaneConfig;
  tun: TunHandle | null;
  user: Identity | null;
  log: Logger;
  snapshot: (live: LiveStatus, extra?: Partial<StatusSnapshot>) => StatusSnapshot;
  /** The data plane's control API asks for a reload (the supervisor owns the config file). */
  reload?: (force: boolean) => Promise<ReloadResult>;
}

export class Supervisor {
  private child: ChildProcess | null = null;
  private spare: ChildProcess | null = null;
  private stopping = false;
  private restarts = 0;
  private readonly recent: number[] = [];
  private identity: { user: string; uid: number; gid: number } = { user: 'root', uid: 0, gid: 0 };
  /** What the network changed since start (uplink addresses, resolvers): a restarted child starts with it. */
  private network: Partial<Pick<DataPlaneConfig, 'localAddress' | 'localAddress6'>> & { upstreams?: string[] } = {};
  /** The last reload's live config: a restarted child starts with it. */
  private live: LiveConfig | null = null;
  private applySeq = 0;
  private readonly applying = new Map<number, (error?: string) => void>();
  /** The connections the child's stop closed, as its goodbye said. */
  closedAtStop = 0;

  private readonly procSockets = new ProcSockets();

  constructor(private readonly o: SupervisorOptions) {}

  /** The network changed (follow-network.ts): tell the running child, and remember it for a restarted one. */
  send(u: NetworkUpdate): void {
    if (u.type === 'uplink') Object.assign(this.network, { localAddress: u.localAddress, localAddress6: u.localAddress6 });
    if (u.type === 'resolvers') this.network.upstreams = u.upstreams;
    const c = this.child;
    if (c && alive(c) && c.connected) c.send(u);
  }

  /**
   * A reload's live config to the running child, resolved once it has swapped
   * it in (rejected with its error, or after APPLY_TIMEOUT_MS); kept for a
   * restarted child either way. With no child running (one restarting), the
   * next one starts with it.
   */
  apply(live: LiveConfig): Promise<void> {
    this.live = live;
    const c = this.child;
    if (!c || !alive(c) || !c.connected) return Promise.resolve();
    const seq = ++this.applySeq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => settle('no answer within 10 s'), APPLY_TIMEOUT_MS);
      const settle = (error?: string) => {
        clearTimeout(timer);
        this.applying.delete(seq);
        if (error === undefined) resolve();
        else reject(new Error(error));
      };
      this.applying.set(seq, settle);
      const m: ReloadMessage = { type: 'apply', seq, live };
      c.send(m);
    });
  }

  /** The data plane's config as it stands now: the one given at start, with what the network and reloads changed since. */
  private currentConfig(): DataPlaneConfig {
    const { upstreams, ...addresses } = this.network;
    const c = { ...this.o.config, ...this.live, ...addresses };
    if (upstreams && c.dns) c.dns = { ...c.dns, upstreams };
    return c;
  }

  /** Resolves once the first child runs (its listeners bound, root dropped); rejects if it dies first. */
  async start(): Promise<void> {
    await this.activate(this.spawnProcess());
    this.refillSpare();
  }

  /** Signal path: ask the child to reset its connections and go, then exit (the exit handler restores). */
  async shutdown(code: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.dropSpare();
    const c = this.child;
    if (c && alive(c)) {
      const gone = new Promise<void>((r) => c.once('exit', () => r()));
      // its goodbye (how many connections it closed) is read before the channel closes
      const said = new Promise<void>((r) => (c.connected ? c.once('disconnect', () => r()) : r()));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
      await Promise.all([gone, said]);
      clearTimeout(timer);
    }
    process.exit(code);
  }

  /** Exit and error paths, where nothing asynchronous can run: the child goes at once. */
  killNow(): void {
    this.stopping = true;
    this.dropSpare();
    if (this.child && alive(this.child)) this.child.kill('SIGKILL');
  }

  /** A data-plane process with the TUN fd and its modules (and its workers') loaded, waiting for its init message. */
  private spawnProcess(): ChildProcess {
    const { tun } = this.o;
    // --expose-gc: the data plane collects once after a crowd of connections has gone (src/data-plane/idle-gc.ts)
    // --queues: it starts a stack worker per queue while it waits for its config (child.ts)
    const queues = tun ? queueFds(tun).length : 1;
    return spawn(process.execPath, [...process.execArgv, '--expose-gc', process.argv[1], '__data-plane', ...(queues > 1 ? ['--queues', String(queues)] : [])], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...(tun ? queueFds(tun) : [])],
    });
  }

  /**
   * With --restart a spare waits, started and loaded, so a restart is one
   * message: node and the modules' start-up (a second or more on a busy
   * machine) is paid before a crash, not after.
   */
  private refillSpare(): void {
    if (!this.o.settings.restart || this.stopping || (this.spare && alive(this.spare))) return;
    const spare = this.spawnProcess();
    this.spare = spare;
    spare.on('exit', () => {
      if (this.spare === spare) this.spare = null;
    });
  }

  private dropSpare(): void {
    if (this.spare && alive(this.spare)) this.spare.kill('SIGKILL');
    this.spare = null;
  }

  private activate(child: ChildProcess): Promise<void> {
    const { settings: s, tun, log } = this.o;
    this.child = child;
    const msg: ChildInit = {
      // the mappings a previous child saved, so a restart keeps the names clients hold
      config: { ...this.currentConfig(), fakeIps: loadFakeIps(s.stateDir) ?? this.o.config.fakeIps },
      tun: tun && { fd: CHILD_TUN_FD, name: tun.name, mtu: tun.mtu, ...(queueFds(tun).length > 1 ? { fds: queueFds(tun).map((_, i) => CHILD_TUN_FD + i) } : {}) },
      user: this.o.user,
    };
    child.send(msg);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), READY_TIMEOUT_MS);
      let ready = false;
      child.on('message', (m: ChildMessage) => {
        if (m.type === 'ready') {
          ready = true;
          clearTimeout(timer);
          this.identity = { user: m.identity.user, uid: m.identity.uid, gid: m.identity.gid };
          log.info({ dataPlanePid: child.pid, ...m.identity, restarts: this.restarts, listening: listeners(s) }, 'data plane running');
          resolve();
        } else if (m.type === 'status') {
          if (!this.stopping) writeStatus(s.stateDir, this.o.snapshot(m.live, { dataPlane: { pid: child.pid!, ...this.identity, restarts: this.restarts } }));
        } else if (m.type === 'fakeips') {
          saveFakeIps(s.stateDir, m.data);
        } else if (m.type === 'find-process') {
          // root reads what the data plane may not: another user's /proc/PID/fd
          this.procSockets.find(m.inode, m.uid).then(
            (p) => alive(child) && child.connected && child.send({ type: 'process-found', id: m.id, process: p } satisfies ProcessFound),
            () => alive(child) && child.connected && child.send({ type: 'process-found', id: m.id, process: null } satisfies ProcessFound),
          );
        } else if (m.type === 'applied') {
          this.applying.get(m.seq)?.(m.error);
        } else if (m.type === 'reload') {
          const answer = (result: ReloadResult) => {
            const r: ReloadMessage = { type: 'reloaded', id: m.id, result };
            if (alive(child) && child.connected) child.send(r);
          };
          if (!this.o.reload) answer({ ok: false, refused: 'unsupported', problems: ['this gateway cannot reload'], applied: [], routing: [], restart: [], ms: 0 });
          else void this.o.reload(m.force).then(answer);
        } else if (m.type === 'bye') {
          this.closedAtStop = m.closed ?? 0;
        }
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        // a reload it was swapping in: the next child starts with it (or the gateway ends)
        for (const settle of [...this.applying.values()]) settle();
        if (!ready) {
          reject(new Error(`the data plane did not start (exit ${code ?? signal})`));
          return;
        }
        if (this.stopping) return;
        this.onChildDied(code, signal);
      });
    });
  }

  private onChildDied(code: number | null, signal: NodeJS.Signals | null): void {
    const { settings: s, log } = this.o;
    const now = Date.now();
    while (this.recent.length && now - this.recent[0] > RESTART_WINDOW_MS) this.recent.shift();
    if (!s.restart || this.recent.length >= MAX_RESTARTS) {
      log.error({ code, signal, restart: s.restart }, s.restart ? 'data plane keeps dying; restoring routes' : 'data plane died; restoring routes');
      process.exit(1); // the exit handler restores
    }
    this.recent.push(now);
    this.restarts++;
    log.error({ code, signal, restarts: this.restarts }, 'data plane died; restarting it, routes kept');
    const next = this.spare && alive(this.spare) ? this.spare : this.spawnProcess();
    this.spare = null;
    this.activate(next).then(
      () => this.refillSpare(),
      (err: Error) => {
        log.fatal({ err }, 'data plane restart failed; restoring routes');
        process.exit(1);
      },
    );
  }
}

/** The TUN's queue fds, in order: the child gets them at CHILD_TUN_FD and on. */
function queueFds(tun: TunHandle): number[] {
  return tun.fds && tun.fds.length > 0 ? [...tun.fds] : [tun.fd!];
}

function alive(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

function listeners(s: SupervisorOptions['settings']): string[] {
  return [s.listen, s.metrics, s.control].filter((l) => l !== undefined).map((l) => `${l!.host}:${l!.port}`);
}
