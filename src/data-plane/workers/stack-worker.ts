// One stack worker: a thread that owns one TUN queue (the kernel steers each
// flow to one queue by its hash), with its own stack, proxy core, UDP relay
// and upstream sockets, so no flow table is shared. The data plane's thread
// (worker-pool.ts) owns the DNS and the fake-IP pool: this asks it for DNS
// answers and real addresses, and keeps a copy of the names (FakeIpReplica).
// Its connections log their own lines, one per connection, on the data
// plane's log fd.
import { existsSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { createLogger } from '../../logging/log.js';
import { buildPolicy } from '../../config/build-policy.js';
import type { OwnerAnswer } from '../../proxy/owner-lookup.js';
import type { Endpoint } from '../../net/endpoint.js';
import { DestinationCheck, resolverLookup } from '../../proxy/destination-check.js';
import { adoptLinuxTun } from '../../tun/linux-tun.js';
import { FaultyTun } from '../../tun/faulty-tun.js';
import { startStack, hasFlowsTo6 } from '../tun-stack.js';
import { makeProxyCore } from '../make-core.js';
import { withTestFaults } from '../test-faults.js';
import { STOP_END, udpStopped } from '../stop-end.js';
import { prefixed } from '../counters.js';
import { applyNetworkUpdate, type LiveUplink } from '../network-update.js';
import { FakeIpReplica } from './fake-ip-replica.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerRequest } from './messages.js';

const STATUS_MS = 1000;

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
const { config, index } = init;
const log = createLogger(config.logLevel, pino.destination({ dest: init.logFd, sync: true }));
// per-worker chatter (network updates) is said once, by the data plane's thread
const quiet = log.child({}, { level: 'warn' });
const policy = buildPolicy(config.policy);

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
const handle = adoptLinuxTun(init.tun.fd, init.tun.name, { mtu: init.tun.mtu, onError: (err) => log.error({ err, worker: index }, 'TUN error') });
const dev = withTestFaults(handle, log)!;
const { stack: s, udp, relay } = startStack(config, dev, core, replica, log, uplink);

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
    },
    drops: Object.fromEntries(s.drops.entries()),
    liveFakes,
    hits: [...policy.hits],
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

port.on('message', (m: ToWorker) => {
  switch (m.type) {
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
      for (const f of s.debugFlows()) log.warn({ worker: index, ...f }, 'tcp debug');
      return;
    case 'stop':
      stop();
      return;
  }
});

// tests only: this worker dies as a bug would kill it once the file named exists, and only once unless
// ':always' follows (TUNSTEER_TEST_WORKER_CRASH=INDEX:PATH[:always])
const crash = /^(\d+):(.+?)(:always)?$/.exec(process.env.TUNSTEER_TEST_WORKER_CRASH ?? '');
if (crash && Number(crash[1]) === index && (!init.restarted || crash[3])) {
  log.warn({ worker: index, trigger: crash[2] }, 'TEST FAULT: this worker crashes once the trigger file exists (TUNSTEER_TEST_WORKER_CRASH)');
  setInterval(() => {
    if (existsSync(crash[2])) throw new Error(`TEST FAULT: worker ${index} crashed`);
  }, 100).unref();
}

post({ type: 'ready' });
