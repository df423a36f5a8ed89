// Command-line parsing for the `tunsteer` CLI. A bad flag is a UsageError that
// names the flag; main.ts prints it and exits 2. Scripts outside the repo depend
// on these names, so they only ever grow.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOG_LEVELS } from './log.js';
import { parseCidr } from './cidr.js';
import { isHostPattern } from './routing/host-patterns.js';
import { DEFAULT_FAKE_IP_HOLD_MS } from './routing/fake-ip-pool.js';
import { ConfigError, readConfig, parseHostPort } from './config/load-config.js';
import type { ConfigFile } from './config/schema.js';

export class UsageError extends Error {}

export const DEFAULT_STATE_DIR = '/run/tunsteer';
/** A ULA (RFC 4193, Global ID 84ff6e64cb drawn at random once): the TUN's IPv6 source for steered traffic. See DECISIONS. */
export const DEFAULT_TUN_ADDRESS6 = 'fd84:ff6e:64cb::1/64';
export const DEFAULT_FAKE_POOL6 = 'fc00::/18';

export interface UpArgs {
  command: 'up';
  mode: 'route-all' | 'per-host' | 'redirect' | 'tproxy';
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
  /** route-all: answer DNS to any address:53 with the gateway's DNS. */
  dnsHijack: boolean;
  tunName: string;
  mtu: number;
  tunAddress: string;
  excludes: string[];
  stateDir: string;
  logLevel: (typeof LOG_LEVELS)[number];
  dryRun: boolean;
  table: number;
  rulePriority: number;
  connectTimeoutMs: number;
  maxConnections: number;
  /** Half-open connections held (the SYN backlog); beyond it SYN cookies, or eviction without them. */
  synBacklog: number;
  synCookies: boolean;
  tunBackend: 'native' | 'tuntap2';
  /** Per-connection TCP buffer bounds in bytes (receive window, send queue). */
  tcpRcvBuf: number;
  tcpSndBuf: number;
  udpIdleMs: number;
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

export interface RunArgs {
  command: 'run';
  /** The gateway's settings (route-all inside the program's own namespace). */
  up: UpArgs;
  /** The program and its arguments. */
  argv: string[];
}

export interface ProxyArgs {
  command: 'proxy';
  listen: { host: string; port: number };
  config: ConfigFile;
  logLevel: (typeof LOG_LEVELS)[number];
  connectTimeoutMs: number;
  sniffTimeoutMs: number;
  httpInspect: boolean;
  metrics?: { host: string; port: number };
}

export interface CheckConfigArgs {
  command: 'check-config';
  file: string;
}

export interface DownArgs {
  command: 'down';
  stateDir: string;
}

export interface StatusArgs {
  command: 'status';
  stateDir: string;
  json: boolean;
}

export interface HelpArgs {
  command: 'help';
  topic?: string;
}

export type CliArgs = UpArgs | DownArgs | StatusArgs | HelpArgs | ProxyArgs | CheckConfigArgs | RunArgs;

export const HELP = `tunsteer: a transparent traffic-steering gateway for Linux

Usage:
  tunsteer up --mode route-all [options]   run the gateway in the foreground until SIGINT/SIGTERM
  tunsteer up --mode per-host --host PATTERN... [options]
  tunsteer run [--config FILE] [--host PATTERN]... -- CMD [ARGS...]
                                           run one program in a network namespace of its own, all of its
                                           traffic through the gateway; exits with the program's status
  tunsteer proxy [--listen 127.0.0.1:8080] [--config FILE]
                                           explicit proxy only (HTTP proxy and SOCKS5 on one port); no root, no TUN
  tunsteer check-config FILE               validate a config file; names every bad field, exit 2 if any
  tunsteer down [--state-dir DIR]          restore what a dead gateway left behind
  tunsteer status [--state-dir DIR] [--json]  mode, device, routes and live counters; exit 1 when none runs
  tunsteer --help

Options of up (flags override the config file):
  --config FILE           YAML or JSON: mode, hosts, rules, upstreams, limits, logging (see tunsteer.example.yaml)
  --mode route-all        default route through the TUN, the gateway's own sockets kept out (policy routing)
  --mode per-host         only names matching --host resolve to fake IPs routed into the TUN; DNS overridden
  --host PATTERN          per-host: api.example.com (that name) or *.corp.example (names below it); repeatable
  --fake-pool CIDR        per-host: the fake-IP pool (default 198.18.0.0/15)
  --fake-pool6 CIDR       its IPv6 side, for AAAA answers (default fc00::/18)
  --fake-ip-hold MS       a fake IP goes to no other name until this long after its last answer and
                          last connection (default 3600000; a full pool of held ones answers SERVFAIL)
  --ipv6 on|off           on (default): IPv6 steered like IPv4; off: IPv6 is refused at the TUN (ICMPv6
                          administratively prohibited; route-all still takes ::/0, so none leaks), no AAAA fakes
  --resolv-conf PATH      the resolver file: per-host overrides and restores it; route-all reads its resolvers
  --no-dns-hijack         route-all: relay DNS like any UDP instead of answering port 53 itself (default: answer,
                          with fake IPs for --host names so rules can see them)
  --tun-name NAME         TUN device name (default tunsteer0)
  --mtu N                 TUN MTU, 576..65520 (default 65520)
  --tun-address CIDR      TUN address (default 198.18.0.1/30)
  --tun-address6 CIDR     TUN IPv6 address in route-all (default ${DEFAULT_TUN_ADDRESS6}, a ULA)
  --exclude CIDR          destination that stays on the direct path; repeatable
  --state-dir DIR         where the routing journal and status live (default ${DEFAULT_STATE_DIR})
  --log-level LEVEL       ${LOG_LEVELS.join(', ')} (default info)
  --dry-run               print the routing plan and change nothing
  --table N               routing table for the TUN default route (default 2022)
  --rule-priority N       first policy-rule priority (default 9000)
  --connect-timeout MS    upstream connect timeout before the client gets a RST (default 10000)
  --max-connections N     connections held at once; new SYNs beyond it get a RST (default 100000)
  --syn-backlog N         half-open connections held; beyond it SYNs get SYN cookies (default 1024)
  --no-syn-cookies        with the backlog full, evict the oldest half-open connection instead
  --tun-backend NAME      native (batched reads, default) or tuntap2
  --tcp-rcvbuf BYTES      per-connection receive buffer: the most a client may send ahead (default 1048576)
  --tcp-sndbuf BYTES      per-connection send buffer towards the client (default 1048576)
  --udp-idle-timeout MS   a UDP flow without traffic expires after this (default 60000; DNS flows 10000)
  --max-udp-flows N       UDP flows held at once; datagrams of new flows beyond it are dropped (default 4096)
  --memory-budget-mb N    bytes buffered in all TCP connections; over it new SYNs get a RST and reading pauses (default 256; 0 = none)
  --block-quic            answer UDP to port 443 with port unreachable, so browsers use TCP where rules must see it
  --sniff-timeout MS      how long to wait for a client's first bytes (TLS SNI, HTTP Host) (default 300)
  --no-http-inspect       relay HTTP as opaque bytes unless a header rule needs it (no per-request log lines)
  --metrics HOST:PORT     Prometheus metrics on a loopback address (default off)
  --listen HOST:PORT      also serve the explicit proxy (HTTP proxy + SOCKS5) on a loopback address
  --user USER             the data plane's user once the TUN is open and its listeners bound
                          (default nobody; root keeps root); routes stay with a root supervisor
  --restart               restart a data plane that dies, keeping the routes (default: restore and exit)
  --intercept-port N      redirect and tproxy modes: the listener's port (default 15001); nftables sends TCP there
  --netns NAME|PATH       steer another network namespace (a container's): the TUN and the routes go
                          there, the gateway and its upstream sockets stay here (route-all only)
  --pid PID               the same, for the namespace of process PID

Options of proxy: --listen HOST:PORT (default 127.0.0.1:8080), --config, --log-level, --connect-timeout,
  --sniff-timeout, --no-http-inspect, --metrics
`;

function int(flag: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${flag}: expected a whole number, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`--${flag}: ${n} is out of range ${min}..${max}`);
  return n;
}

/** on|off (flag), or true/false/"on"/"off" (config). */
function onOff(flag: string, v: string | boolean | undefined, def: boolean): boolean {
  if (v === undefined) return def;
  if (v === true || v === 'on') return true;
  if (v === false || v === 'off') return false;
  throw new UsageError(`--${flag}: "${String(v)}" is not on or off`);
}

function oneOf<T extends string>(flag: string, v: string | undefined, def: T, allowed: readonly T[]): T {
  if (v === undefined) return def;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new UsageError(`--${flag}: "${v}" is not one of ${allowed.join(', ')}`);
  }
  return v as T;
}

function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (e) {
    // node's messages name the flag: "Unknown option '--x'", "Option '--mtu <value>' argument missing"
    throw new UsageError((e as Error).message);
  }
}

export function parseCli(argv: string[]): CliArgs {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    return { command: 'help', topic: rest[0] };
  }
  if (command === 'run') return parseRun(rest);
  if (rest.includes('--help') || rest.includes('-h')) return { command: 'help', topic: command };
  switch (command) {
    case 'up':
      return parseUp(rest);
    case 'proxy':
      return parseProxy(rest);
    case 'check-config': {
      if (rest.length !== 1 || rest[0].startsWith('-')) throw new UsageError('check-config: give exactly one FILE');
      return { command: 'check-config', file: rest[0] };
    }
    case 'down': {
      const { values } = parse(rest, { 'state-dir': { type: 'string' } });
      return { command: 'down', stateDir: (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR };
    }
    case 'status': {
      const { values } = parse(rest, { 'state-dir': { type: 'string' }, json: { type: 'boolean' } });
      return {
        command: 'status',
        stateDir: (values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR,
        json: values.json === true,
      };
    }
    default:
      throw new UsageError(`unknown command "${command}" (try: up, proxy, check-config, down, status, --help)`);
  }
}

function loadConfig(file: string | undefined): ConfigFile {
  if (file === undefined) return {};
  try {
    return readConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
}

/** host:port on loopback: these listeners never face the network. */
function loopbackAddress(flag: string, v: string | undefined): { host: string; port: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--${flag}: "${v}" is not HOST:PORT`);
  const { host, port } = parseHostPort(v);
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    throw new UsageError(`--${flag}: "${host}" is not a loopback address (127.0.0.0/8, ::1 or localhost)`);
  }
  return { host, port };
}

const str = (v: unknown) => v as string | undefined;
const num = (v: number | undefined) => (v === undefined ? undefined : String(v));

function parseUp(argv: string[]): UpArgs {
  const { values: v } = parse(argv, {
    config: { type: 'string' },
    mode: { type: 'string' },
    host: { type: 'string', multiple: true },
    'fake-pool': { type: 'string' },
    'fake-pool6': { type: 'string' },
    'fake-ip-hold': { type: 'string' },
    ipv6: { type: 'string' },
    'tun-address6': { type: 'string' },
    'resolv-conf': { type: 'string' },
    'no-dns-hijack': { type: 'boolean' },
    'tun-name': { type: 'string' },
    mtu: { type: 'string' },
    'tun-address': { type: 'string' },
    exclude: { type: 'string', multiple: true },
    'state-dir': { type: 'string' },
    'log-level': { type: 'string' },
    'dry-run': { type: 'boolean' },
    table: { type: 'string' },
    'rule-priority': { type: 'string' },
    'connect-timeout': { type: 'string' },
    'max-connections': { type: 'string' },
    'syn-backlog': { type: 'string' },
    'no-syn-cookies': { type: 'boolean' },
    'tun-backend': { type: 'string' },
    'tcp-rcvbuf': { type: 'string' },
    'tcp-sndbuf': { type: 'string' },
    'udp-idle-timeout': { type: 'string' },
    'max-udp-flows': { type: 'string' },
    'memory-budget-mb': { type: 'string' },
    'block-quic': { type: 'boolean' },
    'sniff-timeout': { type: 'string' },
    'no-http-inspect': { type: 'boolean' },
    metrics: { type: 'string' },
    listen: { type: 'string' },
    user: { type: 'string' },
    restart: { type: 'boolean' },
    netns: { type: 'string' },
    pid: { type: 'string' },
    'intercept-port': { type: 'string' },
  });
  const c = loadConfig(str(v.config));
  const lim = c.limits ?? {};
  // a flag wins over the file, the file over the default
  const s = (k: string) => v[k] as string | undefined;
  const modeText = s('mode') ?? c.mode;
  if (modeText === undefined) throw new UsageError('--mode: required (route-all, per-host, redirect or tproxy), as a flag or `mode:` in the config');
  const mode = oneOf('mode', modeText, 'route-all', ['route-all', 'per-host', 'redirect', 'tproxy'] as const);
  const hosts = (v.host as string[] | undefined) ?? c.hosts ?? [];
  for (const h of hosts) if (!isHostPattern(h)) throw new UsageError(`--host: "${h}" is not a host name or *.suffix pattern`);
  if (mode === 'per-host' && hosts.length === 0) throw new UsageError('--host: per-host mode needs at least one --host PATTERN');
  const fakePool = s('fake-pool') ?? c.fake_pool ?? '198.18.0.0/15';
  const fp = parseCidr(fakePool);
  if (!fp || fp.family !== 4 || fp.prefix > 28) throw new UsageError(`--fake-pool: "${fakePool}" is not an IPv4 network of /28 or larger`);
  const ipv6 = onOff('ipv6', s('ipv6') ?? c.ipv6, true);
  const fakePool6 = s('fake-pool6') ?? c.fake_pool6 ?? DEFAULT_FAKE_POOL6;
  const fp6 = parseCidr(fakePool6);
  // the IPv6 side holds the IPv4 pool's index space
  if (!fp6 || fp6.family !== 6 || 128 - fp6.prefix < 32 - fp.prefix) {
    throw new UsageError(`--fake-pool6: "${fakePool6}" is not an IPv6 network holding as many addresses as --fake-pool ${fp.text} (/${96 + fp.prefix} or larger)`);
  }
  const tunAddress6 = s('tun-address6') ?? c.tun?.address6 ?? DEFAULT_TUN_ADDRESS6;
  const ta6 = parseCidr(tunAddress6, { hostBits: true });
  if (!ta6 || ta6.family !== 6 || ta6.prefix === 0) throw new UsageError(`--tun-address6: "${tunAddress6}" is not an IPv6 address/prefix such as ${DEFAULT_TUN_ADDRESS6}`);
  const tunName = s('tun-name') ?? c.tun?.name ?? 'tunsteer0';
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(tunName)) {
    throw new UsageError(`--tun-name: "${tunName}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`);
  }
  const excludes = ((v.exclude as string[] | undefined) ?? c.exclude ?? []).map((x) => {
    const p = parseCidr(x);
    if (!p) throw new UsageError(`--exclude: "${x}" is not a CIDR such as 203.0.113.0/24`);
    return p.text;
  });
  const tunAddress = s('tun-address') ?? c.tun?.address ?? '198.18.0.1/30';
  const ta = parseCidr(tunAddress, { hostBits: true });
  if (!ta || ta.family !== 4) throw new UsageError(`--tun-address: "${tunAddress}" is not an IPv4 address/prefix`);
  return {
    command: 'up',
    mode,
    hosts,
    fakePool: fp.text,
    fakePool6: fp6.text,
    fakeIpHoldMs: int('fake-ip-hold', s('fake-ip-hold') ?? num(c.fake_ip_hold_ms), DEFAULT_FAKE_IP_HOLD_MS, 1000, 30 * 86_400_000),
    ipv6,
    tunAddress6: `${ta6.address}/${ta6.prefix}`,
    resolvConf: s('resolv-conf') ?? '/etc/resolv.conf',
    dnsHijack: v['no-dns-hijack'] === true ? false : (c.dns_hijack ?? true),
    tunName,
    mtu: int('mtu', s('mtu') ?? num(c.tun?.mtu), 65520, 576, 65520),
    tunAddress,
    excludes,
    stateDir: s('state-dir') ?? c.state_dir ?? DEFAULT_STATE_DIR,
    logLevel: oneOf('log-level', s('log-level') ?? c.logging?.level, 'info', LOG_LEVELS),
    dryRun: v['dry-run'] === true,
    table: int('table', s('table'), 2022, 1, 2 ** 31 - 1),
    rulePriority: int('rule-priority', s('rule-priority'), 9000, 1, 32000),
    connectTimeoutMs: int('connect-timeout', s('connect-timeout') ?? num(lim.connect_timeout_ms), 10_000, 100, 600_000),
    maxConnections: int('max-connections', s('max-connections') ?? num(lim.max_connections), 100_000, 1, 10_000_000),
    synBacklog: int('syn-backlog', s('syn-backlog') ?? num(lim.syn_backlog), 1024, 1, 1_000_000),
    synCookies: v['no-syn-cookies'] === true ? false : (lim.syn_cookies ?? true),
    tunBackend: oneOf('tun-backend', s('tun-backend') ?? c.tun?.backend, 'native', ['native', 'tuntap2'] as const),
    tcpRcvBuf: int('tcp-rcvbuf', s('tcp-rcvbuf') ?? num(lim.tcp_rcvbuf), 1 << 20, 4096, 1 << 30),
    tcpSndBuf: int('tcp-sndbuf', s('tcp-sndbuf') ?? num(lim.tcp_sndbuf), 1 << 20, 4096, 1 << 30),
    udpIdleMs: int('udp-idle-timeout', s('udp-idle-timeout') ?? num(lim.udp_idle_timeout_ms), 60_000, 1000, 86_400_000),
    maxUdpFlows: int('max-udp-flows', s('max-udp-flows') ?? num(lim.max_udp_flows), 4096, 1, 1_000_000),
    memoryBudgetMb: int('memory-budget-mb', s('memory-budget-mb') ?? num(lim.memory_budget_mb), 256, 0, 1_048_576),
    blockQuic: v['block-quic'] === true || c.block_quic === true,
    config: c,
    sniffTimeoutMs: int('sniff-timeout', s('sniff-timeout') ?? num(c.sniff?.timeout_ms), 300, 1, 10_000),
    httpInspect: v['no-http-inspect'] === true ? false : (c.sniff?.http_inspect ?? true),
    metrics: loopbackAddress('metrics', s('metrics') ?? c.metrics),
    listen: loopbackAddress('listen', s('listen') ?? c.listen),
    user: s('user') ?? c.user,
    restart: v.restart === true || c.restart === true,
    netns: targetNetns(s('netns'), s('pid'), mode),
    interceptPort: int('intercept-port', s('intercept-port') ?? num(c.intercept_port), 15001, 1, 65535),
  };
}

/** --netns NAME (an `ip netns` name) or PATH, or --pid PID (that process's namespace): a path. */
function targetNetns(netns: string | undefined, pid: string | undefined, mode: UpArgs['mode']): string | undefined {
  if (netns === undefined && pid === undefined) return undefined;
  if (netns !== undefined && pid !== undefined) throw new UsageError('--netns and --pid: give one of them');
  if (mode !== 'route-all') throw new UsageError('--netns/--pid: only route-all mode steers another namespace (its DNS is answered through the TUN)');
  if (pid !== undefined) {
    if (!/^[1-9]\d*$/.test(pid)) throw new UsageError(`--pid: "${pid}" is not a process id`);
    return `/proc/${pid}/ns/net`;
  }
  if (netns!.includes('/')) return netns;
  if (!/^[A-Za-z0-9_.-]+$/.test(netns!)) throw new UsageError(`--netns: "${netns}" is not a namespace name or a path`);
  return `/run/netns/${netns}`;
}

/** Options of up that make sense for run; the rest (routing tables, exclusions, modes) do not apply. */
const RUN_OPTIONS = new Set(['--config', '--host', '--ipv6', '--log-level', '--connect-timeout', '--sniff-timeout', '--no-http-inspect', '--mtu', '--tun-name', '--resolv-conf', '--max-connections', '--syn-backlog', '--no-syn-cookies', '--tcp-rcvbuf', '--tcp-sndbuf', '--udp-idle-timeout', '--max-udp-flows', '--memory-budget-mb', '--block-quic', '--tun-backend']);

function parseRun(argv: string[]): RunArgs | HelpArgs {
  const sep = argv.indexOf('--');
  const own = sep < 0 ? argv : argv.slice(0, sep);
  if (own.includes('--help') || own.includes('-h')) return { command: 'help', topic: 'run' };
  const cmd = sep < 0 ? [] : argv.slice(sep + 1);
  if (cmd.length === 0) throw new UsageError('run: give the program after --, as in: tunsteer run -- curl https://example.com');
  for (const a of own) {
    if (a.startsWith('--') && !RUN_OPTIONS.has(a.split('=')[0])) throw new UsageError(`run: ${a.split('=')[0]} does not apply to run`);
  }
  // without root /run is not ours to write
  const stateDir = process.getuid?.() === 0 ? `/run/tunsteer-run-${process.pid}` : join(tmpdir(), `tunsteer-run-${process.pid}`);
  // route-all inside the program's namespace, DNS answered by the gateway
  const up = parseUp(['--mode', 'route-all', '--state-dir', stateDir, ...own]);
  return { command: 'run', up: { ...up, dnsHijack: true }, argv: cmd };
}

function parseProxy(argv: string[]): ProxyArgs {
  const { values: v } = parse(argv, {
    config: { type: 'string' },
    listen: { type: 'string' },
    'log-level': { type: 'string' },
    'connect-timeout': { type: 'string' },
    'sniff-timeout': { type: 'string' },
    'no-http-inspect': { type: 'boolean' },
    metrics: { type: 'string' },
  });
  const c = loadConfig(str(v.config));
  const s = (k: string) => v[k] as string | undefined;
  return {
    command: 'proxy',
    listen: loopbackAddress('listen', s('listen') ?? c.listen ?? '127.0.0.1:8080')!,
    config: c,
    logLevel: oneOf('log-level', s('log-level') ?? c.logging?.level, 'info', LOG_LEVELS),
    connectTimeoutMs: int('connect-timeout', s('connect-timeout') ?? num(c.limits?.connect_timeout_ms), 10_000, 100, 600_000),
    sniffTimeoutMs: int('sniff-timeout', s('sniff-timeout') ?? num(c.sniff?.timeout_ms), 300, 1, 10_000),
    httpInspect: v['no-http-inspect'] === true ? false : (c.sniff?.http_inspect ?? true),
    metrics: loopbackAddress('metrics', s('metrics') ?? c.metrics),
  };
}
