// What the data plane runs with: plain data, made by the supervisor from its
// settings and from what it set up on the system. It crosses the process
// boundary to the child as one IPC message (ipc.ts), so it holds no
// functions, handles or classes, and only what the data plane reads.
import type { PolicyData } from '../config/build-policy.js';
import type { LogLevel } from '../config/settings.js';
import type { RunningConfig } from '../config/running-config.js';

export interface DataPlaneConfig {
  logLevel: LogLevel;
  /** The config file's rules, upstreams and rule-sets with the secrets they name, read by the supervisor: the data plane builds its policy from them (and reads the set files, while it is still root). */
  policy: PolicyData;
  /** The namespace the clients' sockets live in when it is not the data plane's (up --netns, tunsteer run): owner lookups ask there. */
  clientNetns?: string;

  // the proxy core
  connectTimeoutMs: number;
  sniffTimeoutMs: number;
  httpInspect: boolean;

  // the stack's limits
  maxConnections: number;
  synBacklog: number;
  synCookies: boolean;
  memoryBudgetMb: number;
  tcpRcvBuf: number;
  tcpSndBuf: number;

  // UDP, from the TUN and in tproxy mode
  udpIdleMs: number;
  maxUdpFlows: number;
  blockQuic: boolean;

  /** The TUN's queues are chosen by our steering program (linux-tun.ts): status says tun_steering 1. */
  tunSteering?: boolean;
  /** IPv6 relayed: asked for and the TUN can carry it. Off: the stack refuses IPv6 (ICMPv6 administratively prohibited) and mapped names get no AAAA. */
  ipv6: boolean;
  /** Names matching these patterns get fake IPs from the pools when the gateway answers DNS. */
  hosts: string[];
  fakePool: string;
  fakePool6: string;
  /** A fake IP is not given to another name until this long after its last answer and connection. */
  fakeIpHoldMs: number;
  /** Fake-IP mappings the previous run saved. */
  fakeIps?: unknown;

  /**
   * Source address for upstream sockets: route-all binds them to the uplink's address so policy routing keeps them out of the TUN.
   * null: route-all with no IPv4 uplink (now): IPv4 destinations are refused (network unreachable). Changes while running (NetworkUpdate).
   */
  localAddress?: string | null;
  /** The same for IPv6 destinations (the IPv6 uplink's); null: route-all without an IPv6 uplink, IPv6 destinations refused. */
  localAddress6?: string | null;
  /** DNS answered by the gateway at this address ('*': any address, port 53), forwarded to these resolvers. Absent: DNS is relayed like any UDP. */
  dns?: { address: string; upstreams: string[]; /** DNS over TCP: closed after this long with no query in flight (default 30 s). */ tcpIdleMs?: number };
  /** redirect and tproxy modes: the listener nftables sends TCP to (tproxy: and UDP, same port). */
  intercept?: { kind: 'redirect' | 'tproxy'; port: number };
  /** The explicit proxy, on a loopback address. */
  listen?: { host: string; port: number };
  /** Prometheus metrics, on a loopback address. */
  metrics?: { host: string; port: number };
  /** The control API and dashboard; secret: the bearer secret's value (read by the supervisor), absent on loopback without one. */
  control?: { host: string; port: number; secret?: string };
  /** The config as the control API shows it, secrets redacted (config/running-config.ts). */
  running?: RunningConfig;
  /** What the supervisor set up, for the control API's status: the mode and the routing plan's steps. */
  about?: { mode: string; plan: string[] };
}

/** What a reload changes in a running data plane (the rest needs a restart): swapped for new connections. */
export const LIVE_KEYS = [
  'policy',
  'hosts',
  'logLevel',
  'connectTimeoutMs',
  'sniffTimeoutMs',
  'httpInspect',
  'maxConnections',
  'synBacklog',
  'synCookies',
  'memoryBudgetMb',
  'udpIdleMs',
  'maxUdpFlows',
  'blockQuic',
  'running',
] as const satisfies readonly (keyof DataPlaneConfig)[];

export type LiveConfig = Pick<DataPlaneConfig, (typeof LIVE_KEYS)[number]>;

export function liveConfigOf(c: DataPlaneConfig): LiveConfig {
  return Object.fromEntries(LIVE_KEYS.filter((k) => c[k] !== undefined).map((k) => [k, c[k]])) as LiveConfig;
}
