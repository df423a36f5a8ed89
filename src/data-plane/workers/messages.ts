// What the data plane's thread and its stack workers say to each other over
// the worker's port (structured clone: plain data only). One worker per TUN
// queue; the data plane's thread owns the DNS, the fake-IP pool, the owner
// lookups and the rule-set files (it watches them and sends their text).
import type { DataPlaneConfig, LiveConfig } from '../config.js';
import type { NetworkUpdate } from '../ipc.js';
import type { Endpoint } from '../../net/endpoint.js';
import type { ConnectionInfo } from '../../proxy/connection-registry.js';
import type { Bytes } from '../../control/contracts.js';

/**
 * A rule-set for a worker: the text the data plane's thread compiled its own
 * copy from (the worker compiles the same text: compiled sets do not cross
 * threads), or, in a reload, "the one you run under this name" (same file and
 * format, kept current by 'rule-set' asks).
 */
export type RuleSetSource = { name: string; path: string; format?: 'text' | 'sing-box'; text: string } | { name: string; reuse: true };

/** What a worker asks the data plane's thread. */
export type WorkerRequest =
  | { op: 'answer'; query: Uint8Array; viaTcp: boolean }
  | { op: 'lookup'; name: string; family: 4 | 6 }
  /** Who made a connection (src/owner: sock_diag here, /proc through the supervisor). */
  | { op: 'owner'; proto: 'tcp' | 'udp'; src: Endpoint; dst: Endpoint; need: 1 | 2 };

/** What the data plane's thread asks a worker; each gets an 'answer' with its id. */
export type WorkerAsk =
  /** The control API: this worker's connections, a close by id, all closed, bytes so far. */
  | { op: 'connections' }
  | { op: 'close'; id: number }
  | { op: 'closeAll' }
  | { op: 'totals' }
  /** Each rule's hits and the time of the last (the policy's hitCounts, hitAt). */
  | { op: 'hits' }
  /** A reload, step 1: build the policy (limits already split); nothing changes yet. */
  | { op: 'prepare'; seq: number; live: LiveConfig; sets: RuleSetSource[] }
  /** Step 2: swap the prepared one in; answers true, or false when this worker prepared none with seq (it started since). */
  | { op: 'commit'; seq: number }
  /** Another worker could not prepare: drop the prepared one. */
  | { op: 'abort'; seq: number }
  /** The control API set the log level. */
  | { op: 'log-level'; level: string }
  /** After a suspend: probe this worker's upstream sockets; answers how many. */
  | { op: 'wake'; sleptMs: number }
  /** A rule-set file changed (the data plane's thread read it): swap this text in. */
  | { op: 'rule-set'; name: string; path: string; text: string };

export interface WorkerInit {
  index: number;
  /** Limits split (worker-pool.ts workerLimits); the live part is the one in force when this worker starts. */
  config: DataPlaneConfig;
  /** The reload it starts with (0: the config of the start). */
  reloadSeq: number;
  /** Every rule-set the policy names, with its text. */
  ruleSets: RuleSetSource[];
  /** This worker's queue: its fd (the process's, kept open by the data plane), the device's name and MTU. */
  tun: { fd: number; name: string; mtu: number };
  /** The fd log lines go to (the data plane's). */
  logFd: number;
  /** Mappings at start, [name, IPv4 text], least recently used first. */
  fakeIps: [string, string][];
  /** The uplink now (it may have changed since the config was made). */
  uplink: { localAddress?: string | null; localAddress6?: string | null };
  /**
   * The stop's handshake: slot `index` is set to closed + 1 once this worker
   * has logged and reset its connections, so the data plane's synchronous stop
   * can wait for it with Atomics.wait.
   */
  stopped: SharedArrayBuffer;
  /** A restart after this queue's worker died. */
  restarted: boolean;
}

/** Data plane → worker. */
export type ToWorker =
  /** A preloaded worker's first message (worker-thread.ts preloadWorkers); one started with its init as workerData gets none. */
  | { type: 'init'; init: WorkerInit }
  | { type: 'reply'; id: number; ok: boolean; value?: unknown; error?: string }
  | { type: 'ask'; id: number; ask: WorkerAsk }
  /** New mappings and learned destinations; the worker acks with `took` once applied. */
  | { type: 'names'; seq: number; fakeIps: [string, string][]; learned: [string, string[], number][] }
  | { type: 'network'; update: NetworkUpdate }
  | { type: 'stop' }
  /** Send a status now (the data plane settling). */
  | { type: 'report' }
  | { type: 'debug' };

/** Worker → data plane. */
export type FromWorker =
  /** offloads: what its queue's fd has in force (tun-offload.ts offloadNames): the device's, the same on every queue. */
  | { type: 'ready'; offloads: string[] }
  | { type: 'request'; id: number; req: WorkerRequest }
  | { type: 'answer'; id: number; ok: boolean; value?: unknown; error?: string }
  | { type: 'used'; ips: number[] }
  /** A line this worker logged, for the control API's log tail (only with the API on). */
  | { type: 'log'; line: string }
  | { type: 'took'; seq: number }
  | { type: 'status'; counters: Record<string, number>; drops: Record<string, number>; liveFakes: number[]; hits: [string, number][] };

/** The answers to the control API's asks, by op. */
export interface AskAnswers {
  connections: ConnectionInfo[];
  close: boolean;
  closeAll: number;
  totals: Bytes;
  hits: { counts: Float64Array; at: Float64Array };
  prepare: true;
  commit: boolean;
  abort: true;
  'log-level': true;
  wake: number;
  'rule-set': true;
}
