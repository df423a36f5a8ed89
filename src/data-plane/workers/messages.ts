// What the data plane's thread and its stack workers say to each other over
// the worker's port (structured clone: plain data only). One worker per TUN
// queue; the data plane's thread owns the DNS and the fake-IP pool.
import type { DataPlaneConfig } from '../config.js';
import type { NetworkUpdate } from '../ipc.js';
import type { Endpoint } from '../../net/endpoint.js';

/** What a worker asks the pool's owner. */
export type WorkerRequest =
  | { op: 'answer'; query: Uint8Array; viaTcp: boolean }
  | { op: 'lookup'; name: string; family: 4 | 6 }
  /** Who made a connection (src/owner: sock_diag there, /proc through the supervisor). */
  | { op: 'owner'; proto: 'tcp' | 'udp'; src: Endpoint; dst: Endpoint; need: 1 | 2 };

export interface WorkerInit {
  index: number;
  /** Its policy is built from config.policy (the secrets the supervisor read; the rule-set files read here). */
  config: DataPlaneConfig;
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
  | { type: 'reply'; id: number; ok: boolean; value?: unknown; error?: string }
  /** New mappings and learned destinations; the worker acks with `took` once applied. */
  | { type: 'names'; seq: number; fakeIps: [string, string][]; learned: [string, string[], number][] }
  | { type: 'network'; update: NetworkUpdate }
  | { type: 'stop' }
  /** Send a status now (the data plane settling). */
  | { type: 'report' }
  | { type: 'debug' };

/** Worker → data plane. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'request'; id: number; req: WorkerRequest }
  | { type: 'used'; ips: number[] }
  | { type: 'took'; seq: number }
  | { type: 'status'; counters: Record<string, number>; drops: Record<string, number>; liveFakes: number[]; hits: [string, number][] };
