// What the control API is given to answer with, defined here (the data plane
// implements it, the supervisor produces reload results): plain data and a
// few functions, so the API knows nothing of processes, stacks or workers.
import type { ConnectionInfo } from '../proxy/connection-registry.js';
import type { RunningConfig } from '../config/running-config.js';
import type { LogTap } from '../logging/log-tap.js';

/**
 * What a reload did (SIGHUP, `tunsteer reload`, PUT /configs all get this).
 * Refused: nothing changed, and problems say why, one line each naming the
 * setting.
 */
export interface ReloadResult {
  ok: boolean;
  /** invalid: the config (or a secret it names) has problems; restart: a setting changed that needs one; failed: applying it failed; unsupported: this gateway cannot reload. */
  refused?: 'invalid' | 'restart' | 'failed' | 'unsupported';
  problems: string[];
  /** Settings the data plane took (config names: rules, upstreams, limits.max_connections, ...). */
  applied: string[];
  /** Routing steps added and removed through the journal (route-all's excludes). */
  routing: string[];
  /** With force: settings that changed in the file but wait for a restart. */
  restart: string[];
  ms: number;
}

/**
 * Connections and bytes of one part of the data plane (today the one proxy
 * core; with worker threads, one per worker, each answering for its own
 * connections, possibly asynchronously). The API lists the union and sums
 * the bytes (live-sources.ts).
 */
export interface LiveSource {
  connections(): ConnectionInfo[] | Promise<ConnectionInfo[]>;
  /** False when this source has no such connection. */
  close(id: number): boolean | Promise<boolean>;
  closeAll(): number | Promise<number>;
  /** Bytes relayed since start, closed and open connections together, each way. */
  totals(): Bytes | Promise<Bytes>;
}

export interface Bytes {
  up: number;
  down: number;
}

/** A connection as the API lists it: a source's, with an id unique across sources. */
export type ListedConnection = Omit<ConnectionInfo, 'id'> & { id: string };

export interface RuleView {
  index: number;
  /** Its `name`, or rules[i]; "default" for what matches nothing. */
  name: string;
  /** The match, in the config's words: domain_suffix=corp.example port=443. */
  match: Record<string, string[]>;
  action: string;
  upstream?: string;
  hits: number;
  /** Epoch ms of the last hit, 0 for none. */
  hitAt: number;
}

export interface UpstreamView {
  name: string;
  type: 'socks5' | 'http';
  address: string;
}

export interface FakeIpView {
  ip: string;
  ip6?: string;
  host: string;
}

export interface ControlContext {
  version: string;
  /** The bearer secret's value; undefined: none asked (loopback only). */
  secret?: string;
  /** One source per part of the data plane that relays (its proxy core; with --workers, each worker's too). */
  live: readonly LiveSource[];
  rules(): RuleView[] | Promise<RuleView[]>;
  upstreams(): UpstreamView[];
  /** The running config, secrets redacted. */
  config(): RunningConfig | undefined;
  /** tunsteer's own: mode, device, routes, offloads, workers, counters. */
  status(): Record<string, unknown>;
  fakeIps(): FakeIpView[];
  reload(force: boolean): Promise<ReloadResult>;
  /** False for a level the logger does not know. */
  setLogLevel(level: string): boolean;
  logLevel(): string;
  logs: LogTap;
}
