// What a reload would change: the running settings against the ones the
// config file (under the same flags) gives now, each difference sorted by
// what it takes to apply (docs/DECISIONS.md "Operating it live"):
//  - live: the data plane swaps it for new connections and new HTTP requests
//    (rules, upstreams, header values, hosts, limits, timeouts, log level);
//  - routing: route-all's excludes, applied through the journal step by step;
//  - restart: everything the TUN, the listeners, the process's identity or
//    the mode's system setup was made from. Pure: settings in, names out.
import type { GatewaySettings } from './settings.js';

/** Settings the data plane takes while running, by the config file's name for them. */
const LIVE: Partial<Record<keyof GatewaySettings, string>> = {
  hosts: 'hosts',
  logLevel: 'logging.level',
  connectTimeoutMs: 'limits.connect_timeout_ms',
  sniffTimeoutMs: 'sniff.timeout_ms',
  httpInspect: 'sniff.http_inspect',
  maxConnections: 'limits.max_connections',
  synBacklog: 'limits.syn_backlog',
  synCookies: 'limits.syn_cookies',
  memoryBudgetMb: 'limits.memory_budget_mb',
  udpIdleMs: 'limits.udp_idle_timeout_ms',
  maxUdpFlows: 'limits.max_udp_flows',
  blockQuic: 'block_quic',
};

/** Settings that need `tunsteer up` again, with why (shown to the user). */
const RESTART: Partial<Record<keyof GatewaySettings, [string, string]>> = {
  mode: ['mode', 'the system setup is the mode’s'],
  tunName: ['tun.name', 'the TUN is open'],
  mtu: ['tun.mtu', 'the TUN is open'],
  tunAddress: ['tun.address', 'the TUN is open'],
  tunAddress6: ['tun.address6', 'the TUN is open'],
  tunBackend: ['tun.backend', 'the TUN is open'],
  tunOffload: ['--no-tun-offload', 'the TUN is open'],
  workers: ['tun.workers', 'the TUN’s queues are open, one per worker'],
  fakePool: ['fake_pool', 'the pool is routed and its mappings are held by clients'],
  fakePool6: ['fake_pool6', 'the pool is routed and its mappings are held by clients'],
  fakeIpHoldMs: ['fake_ip_hold_ms', 'the pool reads it when it starts'],
  ipv6: ['ipv6', 'the routes and the TUN’s addresses depend on it'],
  resolvConf: ['--resolv-conf', 'the DNS override is in place'],
  dnsHijack: ['dns_hijack', 'the data plane’s DNS is set up at start'],
  dnsTcpIdleMs: ['limits.dns_tcp_idle_timeout_ms', 'the data plane’s DNS is set up at start'],
  stateDir: ['state_dir', 'the journal lives there'],
  table: ['--table', 'the routes are in that table'],
  rulePriority: ['--rule-priority', 'the rules are at those priorities'],
  tcpRcvBuf: ['limits.tcp_rcvbuf', 'the window scale is fixed when the stack starts'],
  tcpSndBuf: ['limits.tcp_sndbuf', 'the stack’s buffers are set when it starts'],
  metrics: ['metrics', 'the listener is bound before root is dropped'],
  listen: ['listen', 'the listener is bound before root is dropped'],
  control: ['control', 'the listener is bound before root is dropped'],
  user: ['user', 'the data plane has dropped root'],
  restart: ['restart', 'the supervisor is running'],
  netns: ['--netns', 'the TUN lives there'],
  interceptPort: ['intercept_port', 'nftables sends connections there'],
};

/** Settings a reload cannot change: flags only (the same flags are read again), or what `tunsteer run` sets. */
const FIXED: (keyof GatewaySettings)[] = ['dryRun', 'sharedResolvConf', 'ephemeralNetns', 'adoptTun'];

/** Every setting diffSettings looks at, or knows it need not: a new setting missing here would change silently at a reload (the unit test checks). */
export function settingsKnownToReload(): Set<string> {
  return new Set([...Object.keys(LIVE), ...Object.keys(RESTART), ...FIXED, 'excludes', 'config']);
}

export interface SettingsDiff {
  /** Config names of what changes live. */
  live: string[];
  /** route-all's excludes changed: the plan is applied again through the journal. */
  routing: string[];
  /** Config names, each with why it needs a restart. */
  restart: string[];
  /** The rules or upstreams changed (their secrets are read again at every reload anyway). */
  policy: boolean;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function diffSettings(now: GatewaySettings, next: GatewaySettings): SettingsDiff {
  const d: SettingsDiff = { live: [], routing: [], restart: [], policy: false };
  for (const [key, name] of Object.entries(LIVE) as [keyof GatewaySettings, string][]) {
    if (!same(now[key], next[key])) d.live.push(name);
  }
  for (const [key, [name, why]] of Object.entries(RESTART) as [keyof GatewaySettings, [string, string]][]) {
    if (!same(now[key], next[key])) d.restart.push(`${name}: needs a restart (${why})`);
  }
  if (!same(now.excludes, next.excludes)) {
    // route-all's plan is the journal's to follow; the nftables of redirect and tproxy are set up once
    if (now.mode === 'route-all') d.routing.push('exclude');
    else if (now.mode !== 'per-host') d.restart.push('exclude: needs a restart (nftables is set up at start in this mode)');
  }
  for (const key of ['rules', 'upstreams'] as const) {
    if (!same(now.config[key], next.config[key])) {
      d.policy = true;
      d.live.push(key);
    }
  }
  return d;
}

/**
 * The settings after a reload: the running ones with what changes live (and
 * route-all's excludes, once the journal has them) taken from the new; what
 * needs a restart stays as it runs, so the next reload names it again.
 */
export function adoptLive(now: GatewaySettings, next: GatewaySettings, withExcludes: boolean): GatewaySettings {
  const out: GatewaySettings = { ...now, config: { ...now.config, rules: next.config.rules, upstreams: next.config.upstreams } };
  const set = <K extends keyof GatewaySettings>(k: K) => (out[k] = next[k]);
  for (const k of Object.keys(LIVE) as (keyof GatewaySettings)[]) set(k);
  if (withExcludes) set('excludes');
  return out;
}
