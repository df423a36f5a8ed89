// The data plane's stack workers, one per TUN queue, seen from the data
// plane's thread, which keeps what has one owner: the DNS and the fake-IP
// pool (answers, real-address lookups, the mappings and their liveness), the
// owner lookups, the rule-set files, the process's status (the workers'
// counters summed) and the stop. Reloads and the control API's views of the
// workers are asks (worker-reload.ts, worker-sources.ts); the new names'
// broadcast is worker-names.ts, the summed status worker-status.ts, the
// thread's start worker-thread.ts. A worker that
// dies is started again on its queue within a moment (its connections are
// lost: their clients get resets); one that keeps dying ends the data plane,
// whose supervisor restores the routes or restarts it: never a queue left
// without a reader, which would be a hole in the routing.
import type { Logger } from '../../logging/log.js';
import type { Policy } from '../../proxy/policy.js';
import type { ProxyCore } from '../../proxy/proxy-core.js';
import type { OwnerLookup } from '../../proxy/owner-lookup.js';
import type { LiveRuleSet } from '../../proxy/rules/live-rule-set.js';
import type { LiveSource } from '../../control/contracts.js';
import type { LogTap } from '../../logging/log-tap.js';
import type { MetricSources } from '../metrics.js';
import type { DataPlaneConfig, LiveConfig } from '../config.js';
import type { GatewayDns } from '../gateway-dns.js';
import type { NetworkUpdate } from '../ipc.js';
import type { LiveUplink } from '../network-update.js';
import type { LiveTarget } from '../live-apply.js';
import { ipv4ToString } from '../../net/address.js';
import type { AskAnswers, FromWorker, ToWorker, WorkerAsk, WorkerInit, WorkerRequest } from './messages.js';
import { startWorker, type PreloadedWorker } from './worker-thread.js';
import { NameBroadcast } from './worker-names.js';
import { activeIn, liveTo, perWorker, proxyView, totals, type Slot } from './worker-status.js';
import { reconfigureWorkers, ruleSetSources, workerLimits } from './worker-reload.js';
import { summedHits, workerSources } from './worker-sources.js';

/** More deaths than this within DEATH_WINDOW_MS: the data plane gives up (its supervisor restores or restarts). */
const MAX_RESTARTS = 5;
const DEATH_WINDOW_MS = 60_000;
const STOP_WAIT_MS = 2000;
/** How long an ask waits for its answer (a reload's prepare compiles rule-sets: seconds for a million names on a busy machine). */
const ASK_TIMEOUT_MS = 8000;

export interface StackWorkersOptions {
  /** The config and policy in force: a worker (re)started gets them. */
  current(): { config: DataPlaneConfig; policy: Policy };
  tun: { fds: readonly number[]; name: string; mtu: number };
  log: Logger;
  logFd: number;
  uplink: LiveUplink;
  /** The DNS that answers for the workers (null: DNS relayed like any UDP). */
  dns: () => GatewayDns | null;
  /** Who made a connection: one resolver (and cache) for every worker. */
  owners: OwnerLookup;
  /** The control API's log tail: the workers' lines go there too. */
  logs?: LogTap;
  /** Threads already loading, one per queue (a data plane started before its config came): the first start takes them. */
  preloaded?: PreloadedWorker[];
}

export { workerLimits };

export class StackWorkers {
  private readonly slots: Slot[] = [];
  private readonly stopped: SharedArrayBuffer;
  private stopping = false;
  private readonly deaths: number[] = [];
  restarts = 0;
  private readonly names = new NameBroadcast(this.slots, (slot, m) => this.post(slot, m));
  private nextAsk = 1;
  /** The last reload committed in the data plane's thread: a worker started since runs it. */
  reloadSeq = 0;
  /** The TUN's offloads as the workers found them on their queues (this thread reads none): status and the control API. */
  offloads: string[] = [];

  constructor(private readonly o: StackWorkersOptions) {
    this.stopped = new SharedArrayBuffer(4 * o.tun.fds.length);
  }

  get count(): number {
    return this.o.tun.fds.length;
  }

  /** Hooks for gatewayDns: what the workers must learn before an answer leaves. */
  readonly news = this.names.news;

  /** Resolves once every worker runs (the data plane drops root only after: a worker reads nothing that needs it, but its start must not race the drop). */
  async start(): Promise<void> {
    await Promise.all(this.o.tun.fds.map((_, i) => this.spawn(i, false)));
  }

  private spawn(i: number, restarted: boolean): Promise<void> {
    const { tun, log, logFd, uplink } = this.o;
    const { config, policy } = this.o.current();
    const d = this.o.dns();
    let ruleSets;
    try {
      ruleSets = ruleSetSources(policy);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const init: WorkerInit = {
      index: i,
      config: workerLimits(config, this.count),
      reloadSeq: this.reloadSeq,
      ruleSets,
      tun: { fd: tun.fds[i], name: tun.name, mtu: tun.mtu },
      logFd,
      fakeIps: d ? d.savedMappings() : [],
      uplink: { localAddress: uplink.localAddress, localAddress6: uplink.localAddress6 },
      stopped: this.stopped,
      restarted,
    };
    // the first start takes the preloaded thread (its modules loaded while the data plane waited); a restart a new one
    const worker = startWorker(init, restarted ? undefined : this.o.preloaded?.[i]);
    const slot: Slot = { worker, ready: false, alive: true, status: null, took: this.names.seq, asks: new Map() };
    this.slots[i] = slot;
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          slot.ready = true;
          this.offloads = m.offloads;
          resolve();
        } else this.onMessage(slot, m);
      });
      let failure: Error | null = null;
      worker.on('error', (err) => {
        failure = err;
        log.error({ err, worker: i }, 'data plane worker failed');
      });
      worker.on('exit', (code) => {
        slot.alive = false;
        for (const a of slot.asks.values()) a.reject(new Error(`exited (${code}) before it answered`));
        slot.asks.clear();
        if (!slot.ready) reject(new Error(`data plane worker ${i} did not start (exit ${code}${failure ? `: ${failure.message}` : ''})`));
        if (this.slots[i] === slot) this.names.wake();
        if (slot.ready && !this.stopping && this.slots[i] === slot) this.onDeath(i, code);
      });
    });
  }

  private onDeath(i: number, code: number): void {
    const { log } = this.o;
    const now = Date.now();
    while (this.deaths.length && now - this.deaths[0] > DEATH_WINDOW_MS) this.deaths.shift();
    const lost = this.slots[i].status?.counters.proxy_active ?? 0;
    if (this.deaths.length >= MAX_RESTARTS) {
      log.fatal({ worker: i, code, deaths: this.deaths.length + 1 }, 'data plane workers keep dying; the data plane stops');
      process.exit(1);
    }
    this.deaths.push(now);
    this.restarts++;
    log.error({ worker: i, code, lost, restarts: this.restarts }, 'data plane worker died; restarting it on its queue');
    this.spawn(i, true).catch((err: Error) => {
      log.fatal({ err, worker: i }, 'data plane worker restart failed; the data plane stops');
      process.exit(1);
    });
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.type) {
      case 'status':
        slot.status = m;
        return;
      case 'log':
        this.o.logs?.push(m.line);
        return;
      case 'answer': {
        const a = slot.asks.get(m.id);
        slot.asks.delete(m.id);
        if (m.ok) a?.resolve(m.value);
        else a?.reject(new Error(m.error));
        return;
      }
      case 'took':
        slot.took = m.seq;
        this.names.wake();
        return;
      case 'used': {
        const d = this.o.dns();
        for (const ip of m.ips) d?.proxy.fakeAddressUsed(ipv4ToString(ip));
        return;
      }
      case 'request':
        this.serve(m.req).then(
          (value) => this.post(slot, { type: 'reply', id: m.id, ok: true, value }),
          (e: Error) => this.post(slot, { type: 'reply', id: m.id, ok: false, error: e.message }),
        );
        return;
    }
  }

  private post(slot: Slot, m: ToWorker): void {
    try {
      slot.worker.postMessage(m);
    } catch {
      // gone: its restart starts afresh
    }
  }

  /** Asks worker i; rejects when it fails, exits or does not answer within timeoutMs. */
  ask<K extends WorkerAsk['op']>(i: number, a: Extract<WorkerAsk, { op: K }>, timeoutMs = ASK_TIMEOUT_MS): Promise<AskAnswers[K]> {
    const slot = this.slots[i];
    if (!slot.alive) return Promise.reject(new Error('not running'));
    const id = this.nextAsk++;
    return new Promise<AskAnswers[K]>((resolve, reject) => {
      const timer = setTimeout(() => {
        slot.asks.delete(id);
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (f: () => void) => {
        clearTimeout(timer);
        f();
      };
      slot.asks.set(id, { resolve: (v) => settle(() => resolve(v as AskAnswers[K])), reject: (e) => settle(() => reject(e)) });
      this.post(slot, { type: 'ask', id, ask: a });
    });
  }

  /** A reload: every worker builds it, then the data plane's thread and all the workers swap it in (worker-reload.ts). */
  reconfigure(target: LiveTarget, live: LiveConfig): Promise<void> {
    return reconfigureWorkers(this, target, live);
  }

  /** A rule-set file changed and the data plane's thread swapped its copy: every worker gets the same text. */
  swapRuleSet(set: LiveRuleSet): void {
    const { log } = this.o;
    const text = set.text;
    if (text === null) {
      log.error({ rule_set: set.name }, 'rule-set text not kept: the workers keep the previous set');
      return;
    }
    const started = Date.now();
    void Promise.allSettled(this.slots.map((_, i) => this.ask(i, { op: 'rule-set', name: set.name, path: set.path, text }))).then((r) => {
      const failed = r.flatMap((x, i) => (x.status === 'rejected' ? [`worker ${i}: ${(x.reason as Error).message}`] : []));
      if (failed.length) log.warn({ rule_set: set.name, failed }, 'rule-set not swapped in every worker');
      else log.info({ rule_set: set.name, workers: this.count, ms: Date.now() - started }, 'rule-set swapped in every worker');
    });
  }

  /** The control API set the log level: every worker's logger follows. */
  setLogLevel(level: string): void {
    for (let i = 0; i < this.count; i++) this.ask(i, { op: 'log-level', level }).catch(() => {});
  }

  /** After a suspend: every worker probes its upstream sockets; resolves how many in all (a worker not answering counts 0). */
  async probeAfterWake(sleptMs: number): Promise<number> {
    const n = await Promise.allSettled([...Array(this.count).keys()].map((i) => this.ask(i, { op: 'wake', sleptMs })));
    return n.reduce((sum, r) => sum + (r.status === 'fulfilled' ? r.value : 0), 0);
  }

  /** The control API's view of each worker's connections (one source each). */
  sources(): LiveSource[] {
    return workerSources(this);
  }

  /** The rules' hits, summed over the data plane's core and the workers. */
  hits(core: ProxyCore): Promise<{ counts: Float64Array; at: Float64Array }> {
    return summedHits(this, core);
  }

  private async serve(req: WorkerRequest): Promise<unknown> {
    if (req.op === 'owner') return this.o.owners.lookup(req.proto, req.src, req.dst, req.need);
    const d = this.o.dns();
    if (!d) throw new Error('no gateway DNS');
    if (req.op === 'lookup') return d.proxy.lookup(req.name, req.family);
    const answer = await d.dns.answer(Buffer.from(req.query.buffer, req.query.byteOffset, req.query.byteLength), req.viaTcp);
    // every worker holds the names this answer made before the client can use them
    await this.names.flush();
    return answer;
  }

  /** True when a worker's stack has connections to this fake (as of its last status). */
  liveTo(ip: number): boolean {
    return liveTo(this.slots, ip);
  }

  /** The workers' counters and drops, summed. */
  totals(): { counters: Record<string, number>; drops: Record<string, number> } {
    return totals(this.slots, this.restarts);
  }

  /** Each worker's share of the connections, as of their last status. */
  perWorker(): Record<string, number> {
    return perWorker(this.slots);
  }

  /** The proxy core's counters and rule hits for the metrics endpoint, this thread's and the workers'. */
  proxyView(core: ProxyCore): MetricSources['proxy'] {
    return proxyView(this.slots, core);
  }

  /** Connections open in the workers, as of their last status. */
  get active(): number {
    return activeIn(this.slots);
  }

  /** Asks every worker for a status now. */
  report(): void {
    for (const s of this.slots) this.post(s, { type: 'report' });
  }

  update(u: NetworkUpdate): void {
    for (const s of this.slots) this.post(s, { type: 'network', update: u });
  }

  debug(): void {
    for (const s of this.slots) this.post(s, { type: 'debug' });
  }

  /**
   * Synchronous, like the data plane's stop: each worker logs its open
   * connections (end gateway-stop) and resets them while this thread waits
   * on a shared flag (Atomics.wait; a worker runs on its own thread). Returns
   * how many connections the workers closed.
   */
  stop(): number {
    this.stopping = true;
    const flags = new Int32Array(this.stopped);
    const live = this.slots.map((s, i) => (s.ready ? i : -1)).filter((i) => i >= 0);
    for (const i of live) {
      Atomics.store(flags, i, 0);
      this.post(this.slots[i], { type: 'stop' });
    }
    const until = Date.now() + STOP_WAIT_MS;
    let closed = 0;
    for (const i of live) {
      for (let left = until - Date.now(); Atomics.load(flags, i) === 0 && left > 0; left = until - Date.now()) Atomics.wait(flags, i, 0, left);
      closed += Math.max(0, Atomics.load(flags, i) - 1);
    }
    for (const s of this.slots) void s.worker.terminate();
    return closed;
  }
}
