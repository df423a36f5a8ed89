// The config file (read through load-config.ts) and the command line's flags
// (as text, from cli/args.ts) resolved into one settings object per command:
// a flag wins over the file, the file over the default.
// Every value is checked here, whichever of the two it came from, and a bad
// one is a ConfigError naming the flag (the CLI exits 2). Scripts outside the
// repo depend on the flag names, so they only ever grow.
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOG_LEVELS } from '../logging/log.js';
import { parseCidr } from '../cidr.js';
import { isHostPattern } from '../routing/host-patterns.js';
import { DEFAULT_FAKE_IP_HOLD_MS } from '../routing/fake-ip-pool.js';
import { DNS_TCP_IDLE_MS } from '../proxy/dns-over-tcp.js';
import { parseHostPort } from './config-models.js';
import { ConfigError } from './config-error.js';
import { cidrProblem } from './cidr-problem.js';
import { tunSteeringAvailable } from '../tun/linux-tun.js';
import type { ConfigFile } from './schema.js';

export { DEFAULT_STATE_DIR, DEFAULT_TUN_ADDRESS6 } from './defaults.js';
import { DEFAULT_STATE_DIR, DEFAULT_TUN_ADDRESS6 } from './defaults.js';
export const DEFAULT_FAKE_POOL6 = 'fc00::/18';

/**
 * The default worker count's ceiling: each worker is a V8 isolate (about
 * 21 MB of idle RSS here, twice with --restart's spare) and takes its share
 * of the limits, so a 64-core host does not get 64 by default
 * (docs/DECISIONS.md "Stack workers").
 */
export const MAX_DEFAULT_WORKERS = 8;
/** The TUN's largest MTU, and its default. */
const MAX_MTU = 65520;
/**
 * On: the suite runs that had two workers at MTU 65520 make a few hundred new
 * connections/s came after the suite's idle step had left 11,000 upstream
 * sockets bound to ports of the one range every upstream bind took its port
 * from; with the port chosen at connect (proxy/upstream-socket.ts) the same
 * sequence gave two workers 2,061-2,837/s against one's 1,780-2,324
 * (docs/DECISIONS.md, "Stack workers", "Held back, then on").
 */
const WORKERS_ON_BY_DEFAULT = true;

/**
 * Stack worker threads by default, once WORKERS_ON_BY_DEFAULT (else 1): one per core (at most MAX_DEFAULT_WORKERS)
 * where the TUN can have a queue per worker (native backend), else 1: the
 * tuntap2 backend has one queue, and redirect and tproxy have no TUN. Also 1
 * below the largest MTU where our steering program does not load (`steering`,
 * asked only then): the kernel steers a UDP datagram's fragments by addresses
 * alone and its unfragmented datagrams by ports too, so a flow's large
 * datagrams could reach another worker and leave from another source port
 * (docs/DECISIONS.md "Steering UDP fragments to one worker (eBPF)").
 */
export function defaultWorkers(
  mode: GatewayMode,
  backend: 'native' | 'tuntap2',
  cores = availableParallelism(),
  mtu = MAX_MTU,
  steering: () => boolean = tunSteeringAvailable,
  onByDefault = WORKERS_ON_BY_DEFAULT,
): number {
  if (!onByDefault || backend !== 'native' || mode === 'redirect' || mode === 'tproxy' || (mtu < MAX_MTU && !steering())) return 1;
  return Math.max(1, Math.min(cores, MAX_DEFAULT_WORKERS));
}

export type LogLevel = (typeof LOG_LEVELS)[number];
export type GatewayMode = 'route-all' | 'per-host' | 'redirect' | 'tproxy';

/** The flags of `up` (and of `run`, a subset) as the command line gave them: text, not yet checked. */
export interface GatewayFlags {
  config?: string;
  mode?: string;
  host?: string[];
  'fake-pool'?: string;
  'fake-pool6'?: string;
  'fake-ip-hold'?: string;
  ipv6?: string;
  'tun-address6'?: string;
  'resolv-conf'?: string;
  'shared-resolv-conf'?: boolean;
  'no-dns-hijack'?: boolean;
  'tun-name'?: string;
  mtu?: string;
  'tun-address'?: string;
  exclude?: string[];
  'state-dir'?: string;
  'log-level'?: string;
  'dry-run'?: boolean;
  table?: string;
  'rule-priority'?: string;
  'connect-timeout'?: string;
  'max-connections'?: string;
  'syn-backlog'?: string;
  'no-syn-cookies'?: boolean;
  'tun-backend'?: string;
  workers?: string;
  'tun-offload'?: boolean;
  'no-tun-offload'?: boolean;
  'tcp-rcvbuf'?: string;
  'tcp-sndbuf'?: string;
  'udp-idle-timeout'?: string;
  'dns-tcp-idle-timeout'?: string;
  'max-udp-flows'?: string;
  'memory-budget-mb'?: string;
  'block-quic'?: boolean;
  'sniff-timeout'?: string;
  'no-http-inspect'?: boolean;
  metrics?: string;
  listen?: string;
  control?: string;
  user?: string;
  restart?: boolean;
  netns?: string;
  pid?: string;
  'intercept-port'?: string;
}

/** The flags of `proxy`. */
export interface ProxyFlags {
  config?: string;
  listen?: string;
  'log-level'?: string;
  'connect-timeout'?: string;
  'sniff-timeout'?: string;
  'no-http-inspect'?: boolean;
  metrics?: string;
}

/** What `up` (and `run`) runs with. */
export interface GatewaySettings {
  mode: GatewayMode;
  /** redirect and tproxy modes: the port nftables sends TCP to. */
  interceptPort: number;
  /** per-host: the host patterns whose names get fake IPs. */
  hosts: string[];
  fakePool: string;
  /** The IPv6 side of the fake pool (same index as the IPv4 fake), default fc00::/18. */
  fakePool6: string;
  /** A fake IP is not given to another name until this long after its last answer and connection. */
  fakeIpHoldMs: number;
  /** IPv6 on: steered and answered like IPv4. Off: IPv6 still goes into the TUN (route-all) and is refused there; per-host gives mapped names no AAAA. */
  ipv6: boolean;
  /** The TUN's IPv6 address in route-all mode (a ULA). */
  tunAddress6: string;
  resolvConf: string;
  /** per-host: rewrite resolvConf even where it is pid 1's resolver file while we run in another network namespace. */
  sharedResolvConf: boolean;
  /** route-all: answer DNS to any address:53 with the gateway's DNS. */
  dnsHijack: boolean;
  tunName: string;
  mtu: number;
  tunAddress: string;
  excludes: string[];
  stateDir: string;
  logLevel: LogLevel;
  dryRun: boolean;
  table: number;
  rulePriority: number;
  connectTimeoutMs: number;
  maxConnections: number;
  /** Half-open connections held (the SYN backlog); beyond it SYN cookies, or eviction without them. */
  synBacklog: number;
  synCookies: boolean;
  tunBackend: 'native' | 'tuntap2';
  /** TUN queues, one stack worker thread each; 1: the data plane's own thread, as before workers (native backend only; default defaultWorkers). */
  workers: number;
  /** IFF_VNET_HDR and TUNSETOFFLOAD where the kernel takes them (tun-offload.ts falls back to less, down to none); off with --no-tun-offload. */
  tunOffload: boolean;
  /** Per-connection TCP buffer bounds in bytes (receive window, send queue). */
  tcpRcvBuf: number;
  tcpSndBuf: number;
  udpIdleMs: number;
  /** DNS over TCP to the gateway's own DNS: closed after this long with no query in flight (RFC 7766 §6.2.3). */
  dnsTcpIdleMs: number;
  maxUdpFlows: number;
  /** Gateway-wide cap on bytes buffered in TCP connections; 0 = none. */
  memoryBudgetMb: number;
  blockQuic: boolean;
  /** The config file's contents (rules, upstreams); flags already merged over it. */
  config: ConfigFile;
  sniffTimeoutMs: number;
  httpInspect: boolean;
  /** host:port of the Prometheus endpoint, loopback only; undefined = off. */
  metrics?: { host: string; port: number };
  /** Also serve the explicit proxy on this loopback address. */
  listen?: { host: string; port: number };
  /** The control API and dashboard; a secret is required unless the address is loopback. */
  control?: ControlSettings;
  /** The TUN and the routes go into this network namespace (a path): up --netns/--pid, and `tunsteer run`. */
  netns?: string;
  /** The namespace dies with its program (tunsteer run): no journal, nothing to restore outside it. */
  ephemeralNetns?: boolean;
  /** tunsteer run without root: the TUN was opened inside the namespace and handed over (fd), its routes set there. */
  adoptTun?: { fd: number; name: string };
  /** The data plane drops to this user (name, uid or uid:gid); undefined: nobody if it exists; "root" keeps root. */
  user?: string;
  /** Restart a data plane that dies, keeping the routes, instead of restoring and exiting. */
  restart: boolean;
}

/** Where the control API listens, and where its bearer secret is read from (the supervisor reads it). */
export interface ControlSettings {
  host: string;
  port: number;
  secret?: { env: string } | { file: string };
}

/** What `proxy` runs with. */
export interface ProxySettings {
  listen: { host: string; port: number };
  config: ConfigFile;
  logLevel: LogLevel;
  connectTimeoutMs: number;
  sniffTimeoutMs: number;
  httpInspect: boolean;
  metrics?: { host: string; port: number };
}

function int(flag: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) throw new ConfigError(`--${flag}: expected a whole number, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(`--${flag}: ${n} is out of range ${min}..${max}`);
  return n;
}

/** on|off (flag), or true/false/"on"/"off" (config). */
function onOff(flag: string, v: string | boolean | undefined, def: boolean): boolean {
  if (v === undefined) return def;
  if (v === true || v === 'on') return true;
  if (v === false || v === 'off') return false;
  throw new ConfigError(`--${flag}: "${String(v)}" is not on or off`);
}

/** Offloads are on unless --no-tun-offload; --tun-offload, which turned them on before they were the default, is still taken. */
function tunOffloadFlag(f: Pick<GatewayFlags, 'tun-offload' | 'no-tun-offload'>): boolean {
  if (f['tun-offload'] === true && f['no-tun-offload'] === true) throw new ConfigError('--no-tun-offload: cannot be given with --tun-offload');
  return f['no-tun-offload'] !== true;
}

function oneOf<T extends string>(flag: string, v: string | undefined, def: T, allowed: readonly T[]): T {
  if (v === undefined) return def;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(`--${flag}: "${v}" is not one of ${allowed.join(', ')}`);
  }
  return v as T;
}

function hostPortAddress(flag: string, v: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new ConfigError(`--${flag}: "${v}" is not HOST:PORT`);
  return parseHostPort(v);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** host:port on loopback: these listeners never face the network. */
function loopbackAddress(flag: string, v: string | undefined): { host: string; port: number } | undefined {
  if (v === undefined) return undefined;
  const { host, port } = hostPortAddress(flag, v);
  if (!isLoopback(host)) {
    throw new ConfigError(`--${flag}: "${host}" is not a loopback address (127.0.0.0/8, ::1 or localhost)`);
  }
  return { host, port };
}

const num = (v: number | undefined) => (v === undefined ? undefined : String(v));

/** `up`'s settings: the flags over the file --config names (or none). */
export function gatewaySettings(f: GatewayFlags, c: ConfigFile): GatewaySettings {
  const lim = c.limits ?? {};
  const modeText = f.mode ?? c.mode;
  if (modeText === undefined) throw new ConfigError('--mode: required (route-all, per-host, redirect or tproxy), as a flag or `mode:` in the config');
  const mode = oneOf<GatewayMode>('mode', modeText, 'route-all', ['route-all', 'per-host', 'redirect', 'tproxy']);
  const hosts = f.host ?? c.hosts ?? [];
  for (const h of hosts) if (!isHostPattern(h)) throw new ConfigError(`--host: "${h}" is not a host name or *.suffix pattern`);
  if (mode === 'per-host' && hosts.length === 0) throw new ConfigError('--host: per-host mode needs at least one --host PATTERN');
  const fakePool = f['fake-pool'] ?? c.fake_pool ?? '198.18.0.0/15';
  const fp = parseCidr(fakePool);
  if (!fp || fp.family !== 4 || fp.prefix > 28)
    throw new ConfigError(`--fake-pool: "${fakePool}" is not an IPv4 network of /28 or larger${fp ? '' : ` (${cidrProblem(fakePool)})`}`);
  const ipv6 = onOff('ipv6', f.ipv6 ?? c.ipv6, true);
  const fakePool6 = f['fake-pool6'] ?? c.fake_pool6 ?? DEFAULT_FAKE_POOL6;
  const fp6 = parseCidr(fakePool6);
  // the IPv6 side holds the IPv4 pool's index space
  if (!fp6 || fp6.family !== 6 || 128 - fp6.prefix < 32 - fp.prefix) {
    throw new ConfigError(
      `--fake-pool6: "${fakePool6}" is not an IPv6 network holding as many addresses as --fake-pool ${fp.text} (/${96 + fp.prefix} or larger)${fp6 ? '' : `: ${cidrProblem(fakePool6)}`}`,
    );
  }
  const tunAddress6 = f['tun-address6'] ?? c.tun?.address6 ?? DEFAULT_TUN_ADDRESS6;
  const ta6 = parseCidr(tunAddress6, { hostBits: true });
  if (!ta6 || ta6.family !== 6 || ta6.prefix === 0) throw new ConfigError(`--tun-address6: "${tunAddress6}" is not an IPv6 address/prefix such as ${DEFAULT_TUN_ADDRESS6}`);
  const tunName = f['tun-name'] ?? c.tun?.name ?? 'tunsteer0';
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(tunName)) {
    throw new ConfigError(`--tun-name: "${tunName}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  }
  const excludes = (f.exclude ?? c.exclude ?? []).map((x) => {
    const p = parseCidr(x);
    if (!p) throw new ConfigError(`--exclude: "${x}" is not a CIDR: ${cidrProblem(x)}`);
    return p.text;
  });
  const tunAddress = f['tun-address'] ?? c.tun?.address ?? '198.18.0.1/30';
  const ta = parseCidr(tunAddress, { hostBits: true });
  if (!ta || ta.family !== 4) throw new ConfigError(`--tun-address: "${tunAddress}" is not an IPv4 address/prefix`);
  const tunBackend = oneOf('tun-backend', f['tun-backend'] ?? c.tun?.backend, 'native', ['native', 'tuntap2'] as const);
  const mtu = int('mtu', f.mtu ?? num(c.tun?.mtu), MAX_MTU, 576, MAX_MTU);
  return {
    mode,
    hosts,
    fakePool: fp.text,
    fakePool6: fp6.text,
    fakeIpHoldMs: int('fake-ip-hold', f['fake-ip-hold'] ?? num(c.fake_ip_hold_ms), DEFAULT_FAKE_IP_HOLD_MS, 1000, 30 * 86_400_000),
    ipv6,
    tunAddress6: `${ta6.address}/${ta6.prefix}`,
    resolvConf: f['resolv-conf'] ?? '/etc/resolv.conf',
    sharedResolvConf: f['shared-resolv-conf'] === true,
    dnsHijack: f['no-dns-hijack'] === true ? false : (c.dns_hijack ?? true),
    tunName,
    mtu,
    tunAddress,
    excludes,
    stateDir: f['state-dir'] ?? c.state_dir ?? DEFAULT_STATE_DIR,
    logLevel: oneOf('log-level', f['log-level'] ?? c.logging?.level, 'info', LOG_LEVELS),
    dryRun: f['dry-run'] === true,
    table: int('table', f.table, 2022, 1, 2 ** 31 - 1),
    rulePriority: int('rule-priority', f['rule-priority'], 9000, 1, 32000),
    connectTimeoutMs: int('connect-timeout', f['connect-timeout'] ?? num(lim.connect_timeout_ms), 10_000, 100, 600_000),
    maxConnections: int('max-connections', f['max-connections'] ?? num(lim.max_connections), 100_000, 1, 10_000_000),
    synBacklog: int('syn-backlog', f['syn-backlog'] ?? num(lim.syn_backlog), 1024, 1, 1_000_000),
    synCookies: f['no-syn-cookies'] === true ? false : (lim.syn_cookies ?? true),
    tunBackend,
    workers: int('workers', f.workers ?? num(c.tun?.workers), defaultWorkers(mode, tunBackend, undefined, mtu), 1, 64),
    tunOffload: tunOffloadFlag(f),
    tcpRcvBuf: int('tcp-rcvbuf', f['tcp-rcvbuf'] ?? num(lim.tcp_rcvbuf), 1 << 20, 4096, 1 << 30),
    tcpSndBuf: int('tcp-sndbuf', f['tcp-sndbuf'] ?? num(lim.tcp_sndbuf), 1 << 20, 4096, 1 << 30),
    udpIdleMs: int('udp-idle-timeout', f['udp-idle-timeout'] ?? num(lim.udp_idle_timeout_ms), 60_000, 1000, 86_400_000),
    dnsTcpIdleMs: int('dns-tcp-idle-timeout', f['dns-tcp-idle-timeout'] ?? num(lim.dns_tcp_idle_timeout_ms), DNS_TCP_IDLE_MS, 1000, 86_400_000),
    maxUdpFlows: int('max-udp-flows', f['max-udp-flows'] ?? num(lim.max_udp_flows), 4096, 1, 1_000_000),
    memoryBudgetMb: int('memory-budget-mb', f['memory-budget-mb'] ?? num(lim.memory_budget_mb), 256, 0, 1_048_576),
    blockQuic: f['block-quic'] === true || c.block_quic === true,
    config: c,
    sniffTimeoutMs: int('sniff-timeout', f['sniff-timeout'] ?? num(c.sniff?.timeout_ms), 300, 1, 10_000),
    httpInspect: f['no-http-inspect'] === true ? false : (c.sniff?.http_inspect ?? true),
    metrics: loopbackAddress('metrics', f.metrics ?? c.metrics),
    listen: loopbackAddress('listen', f.listen ?? c.listen),
    control: controlSettings(f.control, c.control),
    user: f.user ?? c.user,
    restart: f.restart === true || c.restart === true,
    netns: targetNetns(f.netns, f.pid, mode),
    interceptPort: int('intercept-port', f['intercept-port'] ?? num(c.intercept_port), 15001, 1, 65535),
  };
}

/**
 * --control HOST:PORT over the config's `control:`. Off unless one gives it.
 * Loopback needs no secret; any other address refuses to start without one
 * (the API closes connections and reloads the config).
 */
function controlSettings(flag: string | undefined, c: ConfigFile['control']): ControlSettings | undefined {
  const fromFile = typeof c === 'string' ? { address: c } : c;
  const text = flag ?? fromFile?.address;
  if (text === undefined) return undefined;
  const { host, port } = hostPortAddress(flag !== undefined ? 'control' : 'control.address', text);
  const secret = fromFile?.secret_env !== undefined ? { env: fromFile.secret_env } : fromFile?.secret_file !== undefined ? { file: fromFile.secret_file } : undefined;
  if (!secret && !isLoopback(host)) {
    throw new ConfigError(`control.secret_env: required when the control API listens on ${host}, which is not loopback (or give secret_file)`);
  }
  return { host, port, ...(secret ? { secret } : {}) };
}

/** --netns NAME (an `ip netns` name) or PATH, or --pid PID (that process's namespace): a path. */
function targetNetns(netns: string | undefined, pid: string | undefined, mode: GatewayMode): string | undefined {
  if (netns === undefined && pid === undefined) return undefined;
  if (netns !== undefined && pid !== undefined) throw new ConfigError('--netns and --pid: give one of them');
  if (mode !== 'route-all') throw new ConfigError('--netns/--pid: only route-all mode steers another namespace (its DNS is answered through the TUN)');
  if (pid !== undefined) {
    if (!/^[1-9]\d*$/.test(pid)) throw new ConfigError(`--pid: "${pid}" is not a process id`);
    return `/proc/${pid}/ns/net`;
  }
  if (netns!.includes('/')) return netns;
  if (!/^[A-Za-z0-9_.-]+$/.test(netns!)) throw new ConfigError(`--netns: "${netns}" is not a namespace name or a path`);
  return `/run/netns/${netns}`;
}

/**
 * `tunsteer run`: the gateway in route-all mode inside the program's own
 * namespace, DNS answered by the gateway, with a state dir of its own
 * (under /run as root; without root /run is not ours to write).
 */
export function runSettings(f: GatewayFlags, c: ConfigFile): GatewaySettings {
  const stateDir = process.getuid?.() === 0 ? `/run/tunsteer-run-${process.pid}` : join(tmpdir(), `tunsteer-run-${process.pid}`);
  return { ...gatewaySettings({ ...f, mode: 'route-all', 'state-dir': stateDir }, c), dnsHijack: true };
}

export function proxySettings(f: ProxyFlags, c: ConfigFile): ProxySettings {
  return {
    listen: loopbackAddress('listen', f.listen ?? c.listen ?? '127.0.0.1:8080')!,
    config: c,
    logLevel: oneOf('log-level', f['log-level'] ?? c.logging?.level, 'info', LOG_LEVELS),
    connectTimeoutMs: int('connect-timeout', f['connect-timeout'] ?? num(c.limits?.connect_timeout_ms), 10_000, 100, 600_000),
    sniffTimeoutMs: int('sniff-timeout', f['sniff-timeout'] ?? num(c.sniff?.timeout_ms), 300, 1, 10_000),
    httpInspect: f['no-http-inspect'] === true ? false : (c.sniff?.http_inspect ?? true),
    metrics: loopbackAddress('metrics', f.metrics ?? c.metrics),
  };
}
