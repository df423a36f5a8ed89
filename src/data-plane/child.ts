// `tunsteer __data-plane`: the child the supervisor starts (not for users).
// It adopts the TUN fd it inherited, builds the policy (reading secrets while
// it still may), binds its listeners, then drops root for good. Routes and
// DNS are not its business: if it dies, the supervisor restores or restarts.
import { pino } from 'pino';
import { createLogger } from '../logging/log.js';
import { LogTap } from '../logging/log-tap.js';
import { buildPolicy } from '../config/build-policy.js';
import { ruleSetsOf } from '../config/rule-set-files.js';
import { adoptLinuxTun } from '../tun/linux-tun.js';
import { startDataPlane } from './data-plane.js';
import { currentIdentity, dropTo } from './drop-root.js';
import type { ChildInit, ChildMessage, NetworkUpdate, ProcessFound, ReloadMessage, ReloadResult } from './ipc.js';
import type { ProcessInfo } from '../owner/proc-sockets.js';
import { withTestFaults } from './test-faults.js';
import { preloadWorkers } from './workers/worker-thread.js';

/** argv: `--queues N` (the supervisor's): the TUN has N queues, so N stack workers start loading before the config comes. */
export async function runDataPlaneChild(argv: string[] = []): Promise<number> {
  if (!process.send) {
    process.stderr.write('tunsteer: __data-plane is started by `tunsteer up`, not by hand\n');
    return 2;
  }
  const send = (m: ChildMessage, cb?: () => void) => {
    if (process.connected) process.send!(m, undefined, {}, cb);
    else cb?.();
  };
  // An exit listener that throws (a preloaded tool, such as a test runner's,
  // that cannot write its files as the dropped user) must not keep the data
  // plane alive after its supervisor is gone.
  const exit = (code: number): never => {
    try {
      process.exit(code);
    } finally {
      (process as unknown as { reallyExit(code: number): never }).reallyExit(code);
    }
  };
  // the supervisor gone while this still starts (workers loading on a busy machine take seconds):
  // the 'disconnect' below would be registered too late to hear it, and the workers would keep
  // an orphan alive; nothing is relayed yet, so there is nothing to stop
  let started = false;
  process.once('disconnect', () => {
    if (!started) exit(1);
  });
  // a spare (--restart) waits here for its config, maybe for hours: its workers' threads load meanwhile, so a
  // restart pays for neither node's start nor theirs after the crash (the queue count is the TUN's, known at spawn)
  const queueCount = Number(argv[argv.indexOf('--queues') + 1] ?? 1);
  const preloaded = argv.includes('--queues') && queueCount > 1 ? preloadWorkers(queueCount) : [];
  const { config, tun, user } = await new Promise<ChildInit>((r) => process.once('message', (m) => r(m as ChildInit)));
  // the control API streams the log lines: they go to stdout through its tap
  const logs = config.control ? new LogTap() : undefined;
  const log = createLogger(config.logLevel, logs?.destination(pino.destination({ dest: 1, sync: true })));
  // reloads the control API asks for: the supervisor reads the config and answers by id
  let nextReload = 1;
  const reloads = new Map<number, (r: ReloadResult) => void>();
  // which process holds a socket: the supervisor searches /proc as root, for a data plane that is not
  const asked = new Map<number, (p: ProcessInfo | null) => void>();
  let nextAsk = 0;
  const findProcess = (inode: number, uid: number) =>
    new Promise<ProcessInfo | null>((resolve) => {
      const id = ++nextAsk;
      const t = setTimeout(() => {
        asked.delete(id);
        resolve(null);
      }, 5000);
      asked.set(id, (p) => {
        clearTimeout(t);
        asked.delete(id);
        resolve(p);
      });
      send({ type: 'find-process', id, inode, uid });
    });
  // more than one queue: a stack worker reads each (data-plane/workers), this thread none
  const queues = tun?.fds && tun.fds.length > 1 ? { fds: tun.fds, name: tun.name, mtu: tun.mtu } : undefined;
  if (!queues || preloaded.length !== queues.fds.length) for (const p of preloaded.splice(0)) void p.worker.terminate();
  // with workers, each rule-set keeps its text: every worker compiles its own copy from it
  const policy = buildPolicy(config.policy, ruleSetsOf(config.policy, queues !== undefined));
  const handle = tun && !queues ? adoptLinuxTun(tun.fd, tun.name, { mtu: tun.mtu, onError: (err) => log.error({ err }, 'TUN error') }) : null;
  const dp = await startDataPlane(config, withTestFaults(handle, log), policy, {
    log,
    ...(queues ? { queues } : {}),
    ...(preloaded.length ? { preloaded } : {}),
    publish: (live) => send({ type: 'status', live }),
    saveFakeIps: (data) => send({ type: 'fakeips', data }),
    findProcess,
    reload: (force) =>
      new Promise((resolve) => {
        const id = nextReload++;
        reloads.set(id, resolve);
        send({ type: 'reload', id, force });
      }),
    ...(logs ? { logs } : {}),
  });

  process.on('message', (m: NetworkUpdate | ReloadMessage | ProcessFound | ChildInit) => {
    if (!('type' in m)) return;
    if (m.type === 'apply') {
      // a reload: the new policy and limits, for new connections (with workers: once every worker has them)
      dp.apply(m.live).then(
        () => send({ type: 'applied', seq: m.seq }),
        (e: Error) => send({ type: 'applied', seq: m.seq, error: e.message }),
      );
    } else if (m.type === 'reloaded') {
      reloads.get(m.id)?.(m.result);
      reloads.delete(m.id);
    } else if (m.type === 'process-found') {
      asked.get(m.id)?.(m.process);
    } else {
      // the network changed under the gateway: the supervisor follows it and says what is new
      dp.update(m);
    }
  });

  let stopping = false;
  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    let closed = 0;
    try {
      closed = dp.stop(); // clients see RSTs; the last mappings go to the supervisor
    } finally {
      send({ type: 'bye', closed }, () => exit(code));
    }
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // the supervisor is gone (kill -9): nothing may outlive it; `tunsteer down` restores
  process.on('disconnect', () => stop(1));
  started = true;
  if (!process.connected) stop(1);
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'data plane failed');
    if (stopping) exit(1);
    stop(1);
  });

  // everything that needs root is done: the fd is ours, the listeners are bound
  if (user) dropTo(user);
  const me = currentIdentity();
  send({ type: 'ready', identity: { user: user && me.uid === user.uid ? user.user : me.uid === 0 ? 'root' : String(me.uid), ...me } });
  return -1;
}
