// One stack worker: a thread that owns one TUN queue (the kernel steers each
// flow to one queue by its hash), with its own stack, proxy core, UDP relay
// and upstream sockets, so no flow table is shared. The data plane's thread
// (worker-pool.ts) owns the DNS and the fake-IP pool: this asks it for DNS
// answers and real addresses, and keeps a copy of the names (FakeIpReplica);
// it owns the owner lookups too (asked here per connection that needs one)
// and the rule-set files, whose text it sends. A reload is built here from
// the same config (compiled rules do not cross threads) and swapped in when
// the data plane says every worker has built it. Its connections log their
// own lines, one per connection, on the data plane's log fd.
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { createLogger } from '../../logging/log.js';
import { buildPolicy } from '../../config/build-policy.js';
import { LiveRuleSet } from '../../proxy/rules/live-rule-set.js';
import { parseRuleSet } from '../../proxy/rules/rule-set-file.js';
import type { RuleSetMatcher, RuleSets } from '../../proxy/rules/rule-types.js';
import type { OwnerAnswer } from '../../proxy/owner-lookup.js';
import { DestinationCheck, resolverLookup } from '../../proxy/destination-check.js';
import { adoptLinuxTun } from '../../tun/linux-tun.js';
import { FaultyTun } from '../../tun/faulty-tun.js';
import { offloadNames } from '../../tun/tun-offload.js';
import { startStack, hasFlowsTo6 } from '../tun-stack.js';
import { makeProxyCore } from '../make-core.js';
import { withTestFaults } from '../test-faults.js';
import { STOP_END, udpStopped } from '../stop-end.js';
import { prefixed } from '../counters.js';
import { applyNetworkUpdate, probeUpstreams, type LiveUplink } from '../network-update.js';
import type { Endpoint } from '../../net/endpoint.js';
import { prepareLive, type LiveTarget, type PreparedLive } from '../live-apply.js';
import { IdleGc } from '../idle-gc.js';
import { FakeIpReplica } from './fake-ip-replica.js';
import type { AskAnswers, FromWorker, RuleSetSource, ToWorker, WorkerAsk, WorkerInit, WorkerRequest } from './messages.js';

const STATUS_MS = 1000;

const port = parentPort!;
// preloaded (worker-thread.ts): the modules above are loaded; the init comes once the data plane has its config
const init = (workerData as WorkerInit | null) ?? (await new Promise<WorkerInit>((r) => port.once('message', (m: Extract<ToWorker, { type: 'init' }>) => r(m.init))));
const post = (m: FromWorker) => port.postMessage(m);
const { config, index } = init;
const toFd = pino.destination({ dest: init.logFd, sync: true });
// with the control API on, each line also goes to the data plane's thread, whose log tail (GET /logs) the API streams
const root = createLogger(
  config.logLevel,
  config.control
    ? {
        write: (line: string) => {
          toFd.write(line);
          post({ type: 'log', line });
        },
      }
    : toFd,
);
// every line says which worker wrote it (a connection's line: which queue the kernel steered it to)
const log = root.child({ worker: index });
// per-worker chatter (network updates) is said once, by the data plane's thread
const quiet = root.child({}, { level: 'warn' });

/** The sets a policy names, compiled from the texts sent (or, in a reload, the running one of that name). */
function ruleSetsFrom(sources: readonly RuleSetSource[], running: RuleSets): Map<string, RuleSetMatcher> {
  const out = new Map<string, RuleSetMatcher>();
  for (const src of sources) {
    if ('reuse' in src) {
      const old = running.get(src.name);
      if (!old) throw new Error(`rule_sets.${src.name}: not running in this worker`);
      out.set(src.name, old);
    } else out.set(src.name, new LiveRuleSet(src.name, src.path, parseRuleSet(src.name, src.path, src.text, src.format), src.format));
  }
  return out;
}
const policy = buildPolicy(config.policy, ruleSetsFrom(init.ruleSets, new Map()));

let nextId = 1;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
const ask = <T>(req: WorkerRequest): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
    post({ type: 'request', id, req });
  });
/** Fakes whose connections ended since the last status: their hold time starts again (the pool's owner). */
const used = new Set<number>();

const replica = config.dns
  ? new FakeIpReplica(config, {
      answer: async (q, viaTcp) => {
        const a = await ask<Uint8Array | null>({ op: 'answer', query: q, viaTcp });
        return a === null ? null : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      },
      lookup: (name, family) => ask<string>({ op: 'lookup', name, family }),
      used: (ip) => used.add(ip),
    })
  : null;
replica?.apply(init.fakeIps);

const uplink: LiveUplink = { localAddress: init.uplink.localAddress, localAddress6: init.uplink.localAddress6 };
let resolvers = config.dns?.upstreams;
const destinations = new DestinationCheck(resolverLookup(() => ({ servers: resolvers, localAddress: uplink.localAddress, localAddress6: uplink.localAddress6 })));
const owners = { lookup: (proto: 'tcp' | 'udp', src: Endpoint, dst: Endpoint, need: 1 | 2) => ask<OwnerAnswer>({ op: 'owner', proto, src, dst, need }) };
const core = makeProxyCore(config, policy, log, replica, destinations, uplink, owners);
const handle = adoptLinuxTun(init.tun.fd, init.tun.name, { mtu: init.tun.mtu, onError: (err) => log.error({ err }, 'TUN error') });
const dev = withTestFaults(handle, log)!;
const { stack: s, udp, relay } = startStack(config, dev, core, replica, log, uplink, owners);
const target: LiveTarget = { core, stack: s, relay, dns: null, log, config };
/** The reload in force, and the one built and waiting for its commit. */
let reloadSeq = init.reloadSeq;
let prepared: { seq: number; next: PreparedLive } | null = null;

// a crowd's garbage in this worker's heap (an isolate of its own: the data plane's thread collects only its own)
const gc = (globalThis as { gc?: () => void }).gc;
const idleGc = new IdleGc(
  gc
    ? () => {
        s.releaseClosed();
        gc();
      }
    : undefined,
);
setInterval(() => idleGc.sample(Math.max(s.connections, core.counters.active), performance.now()), STATUS_MS).unref();

function status(): void {
  const liveFakes: number[] = [];
  if (replica) for (const [ip, ip6] of replica.mapped()) if (s.hasFlowsTo(ip) || (ip6 !== null && hasFlowsTo6(s, ip6))) liveFakes.push(ip);
  if (used.size) {
    post({ type: 'used', ips: [...used] });
    used.clear();
  }
  post({
    type: 'status',
    counters: {
      ...s.counters,
      connections: s.connections,
      ...s.tcpStates(),
      ...udp.counters,
      ...relay.counters,
      ...prefixed('proxy_', core.counters),
      ...(dev instanceof FaultyTun ? { ...prefixed('fault_rx_', dev.counters.rx), ...prefixed('fault_tx_', dev.counters.tx) } : {}),
      ...Object.fromEntries(offloadNames(dev.offload).map((k) => [`tun_offload_${k}`, 1])),
      mem_idle_gcs: idleGc.runs,
    },
    drops: Object.fromEntries(s.drops.entries()),
    liveFakes,
    hits: [...core.policy.hits],
  });
}
setInterval(status, STATUS_MS).unref();

/** Log every open connection's line (end gateway-stop), reset them, and say how many: the data plane waits on the flag. */
function stop(): void {
  const flags = new Int32Array(init.stopped);
  let closed = core.counters.active;
  const udpBefore = udpStopped;
  try {
    core.finishAll(STOP_END);
    s.abortAll();
    relay.closeAll();
    dev.flushTx();
    closed += udpStopped - udpBefore;
  } finally {
    Atomics.store(flags, index, closed + 1);
    Atomics.notify(flags, index);
  }
}

// tests only: this worker fails a reload's prepare while the file named exists (TUNSTEER_TEST_WORKER_PREPARE_FAIL=INDEX:PATH)
const prepareFail = /^(\d+):(.+)$/.exec(process.env.TUNSTEER_TEST_WORKER_PREPARE_FAIL ?? '');
const prepareFault = prepareFail && Number(prepareFail[1]) === index ? prepareFail[2] : null;

/** The data plane's asks: the control API's views of this worker, a reload's steps, a rule-set's new text. */
function answer(a: WorkerAsk): AskAnswers[WorkerAsk['op']] {
  switch (a.op) {
    case 'connections':
      return core.connections.list();
    case 'close':
      return core.connections.close(a.id);
    case 'closeAll':
      return core.connections.closeAll();
    case 'totals': {
      const open = core.connections.openBytes();
      return { up: core.counters.bytesUp + open.up, down: core.counters.bytesDown + open.down };
    }
    case 'hits':
      return { counts: core.policy.hitCounts, at: core.policy.hitAt };
    case 'prepare':
      if (prepareFault && existsSync(prepareFault)) throw new Error('TEST FAULT: this worker refuses reloads (TUNSTEER_TEST_WORKER_PREPARE_FAIL)');
      prepared = { seq: a.seq, next: prepareLive(target, a.live, ruleSetsFrom(a.sets, core.policy.ruleSets)) };
      return true;
    case 'commit':
      if (prepared?.seq !== a.seq) return reloadSeq >= a.seq;
      prepared.next.commit();
      reloadSeq = a.seq;
      prepared = null;
      return true;
    case 'abort':
      if (prepared?.seq === a.seq) prepared = null;
      return true;
    case 'log-level':
      log.level = a.level;
      root.level = a.level;
      return true;
    case 'wake':
      return probeUpstreams();
    case 'rule-set': {
      const set = core.policy.ruleSets.get(a.name);
      if (!(set instanceof LiveRuleSet) || set.path !== a.path) throw new Error(`rule_sets.${a.name}: not running in this worker`);
      set.swap(parseRuleSet(set.name, set.path, a.text, set.format));
      return true;
    }
  }
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'ask': {
      let reply: FromWorker;
      try {
        reply = { type: 'answer', id: m.id, ok: true, value: answer(m.ask) };
      } catch (e) {
        reply = { type: 'answer', id: m.id, ok: false, error: (e as Error).message };
      }
      post(reply);
      return;
    }
    case 'reply': {
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(m.error));
      return;
    }
    case 'names':
      replica?.apply(m.fakeIps);
      for (const [name, addresses, ttl] of m.learned) destinations.learn(name, addresses, ttl);
      post({ type: 'took', seq: m.seq });
      return;
    case 'network':
      if (m.update.type === 'resolvers') resolvers = m.update.upstreams;
      applyNetworkUpdate(m.update, { uplink, udp: relay, dns: null, log: quiet });
      return;
    case 'report':
      status();
      return;
    case 'debug':
      for (const f of s.debugFlows()) log.warn(f, 'tcp debug');
      return;
    case 'stop':
      stop();
      return;
    case 'init':
      return; // taken above
  }
});

// tests only: this worker dies as a bug would kill it once the file named exists, and only once unless
// ':always' follows (TUNSTEER_TEST_WORKER_CRASH=INDEX:PATH[:always])
const crash = /^(\d+):(.+?)(:always)?$/.exec(process.env.TUNSTEER_TEST_WORKER_CRASH ?? '');
if (crash && Number(crash[1]) === index && (!init.restarted || crash[3])) {
  log.warn({ trigger: crash[2] }, 'TEST FAULT: this worker crashes once the trigger file exists (TUNSTEER_TEST_WORKER_CRASH)');
  setInterval(() => {
    if (existsSync(crash[2])) throw new Error(`TEST FAULT: worker ${index} crashed`);
  }, 100).unref();
}

// a first report before 'ready': the gateway's first status has every counter, zeros included, not only the data plane's own
status();
post({ type: 'ready', offloads: offloadNames(dev.offload) });
