// Command-line parsing for the `tunsteer` CLI: which command, and its flags as
// text. Nothing here reads a file or checks a value: config/settings.ts does
// that, with the config file. What cannot be parsed (an unknown command or
// flag, a missing value) is a UsageError that names it; main.ts exits 2.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { GatewayFlags, ProxyFlags } from '../config/settings.js';
import { UsageError } from './usage-error.js';
import { didYouMean } from '../config/did-you-mean.js';
import type { TopOptions } from './commands/top.js';

export type ParsedCommand =
  | { command: 'help'; topic?: string }
  | { command: 'version' }
  | { command: 'demo' }
  | { command: 'up'; flags: GatewayFlags }
  | { command: 'run'; flags: GatewayFlags; argv: string[] }
  | { command: 'proxy'; flags: ProxyFlags }
  | { command: 'check-config'; file: string }
  | { command: 'down'; stateDir?: string }
  | { command: 'status'; stateDir?: string; json: boolean }
  | { command: 'doctor'; stateDir?: string; table?: number; rulePriority?: number }
  | { command: 'reload'; stateDir?: string; force: boolean }
  | { command: 'top'; options: TopOptions };

/** node:util's option table for a flags type: the compiler checks that every flag has its option and no option lacks a flag. */
type Options<F> = {
  [K in keyof F]-?: NonNullable<F[K]> extends boolean ? { type: 'boolean' } : NonNullable<F[K]> extends string[] ? { type: 'string'; multiple: true } : { type: 'string' };
};

const GATEWAY_OPTIONS: Options<GatewayFlags> = {
  config: { type: 'string' },
  mode: { type: 'string' },
  host: { type: 'string', multiple: true },
  'fake-pool': { type: 'string' },
  'fake-pool6': { type: 'string' },
  'fake-ip-hold': { type: 'string' },
  ipv6: { type: 'string' },
  'tun-address6': { type: 'string' },
  'resolv-conf': { type: 'string' },
  'shared-resolv-conf': { type: 'boolean' },
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
  'tun-offload': { type: 'boolean' },
  'no-tun-offload': { type: 'boolean' },
  'tcp-rcvbuf': { type: 'string' },
  'tcp-sndbuf': { type: 'string' },
  'udp-idle-timeout': { type: 'string' },
  'dns-tcp-idle-timeout': { type: 'string' },
  'max-udp-flows': { type: 'string' },
  workers: { type: 'string' },
  'memory-budget-mb': { type: 'string' },
  'block-quic': { type: 'boolean' },
  'sniff-timeout': { type: 'string' },
  'no-http-inspect': { type: 'boolean' },
  metrics: { type: 'string' },
  listen: { type: 'string' },
  control: { type: 'string' },
  user: { type: 'string' },
  restart: { type: 'boolean' },
  netns: { type: 'string' },
  pid: { type: 'string' },
  'intercept-port': { type: 'string' },
};

/** Flags of up that make sense for run; the rest (routing tables, exclusions, modes) do not apply. help.ts lists these on run's page. */
export const RUN_FLAGS: ReadonlySet<string> = new Set([
  '--config',
  '--host',
  '--ipv6',
  '--log-level',
  '--connect-timeout',
  '--sniff-timeout',
  '--no-http-inspect',
  '--mtu',
  '--tun-name',
  '--resolv-conf',
  '--max-connections',
  '--syn-backlog',
  '--no-syn-cookies',
  '--tcp-rcvbuf',
  '--tcp-sndbuf',
  '--udp-idle-timeout',
  '--dns-tcp-idle-timeout',
  '--max-udp-flows',
  '--memory-budget-mb',
  '--block-quic',
  '--tun-backend',
  '--workers',
  '--no-tun-offload',
]);

const PROXY_OPTIONS: Options<ProxyFlags> = {
  config: { type: 'string' },
  listen: { type: 'string' },
  'log-level': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'sniff-timeout': { type: 'string' },
  'no-http-inspect': { type: 'boolean' },
  metrics: { type: 'string' },
};

function parse<F>(argv: string[], options: Options<F>): F {
  try {
    return parseArgs({ args: argv, options: options as ParseArgsConfig['options'], strict: true, allowPositionals: false }).values as F;
  } catch (e) {
    // node's messages name the flag: "Unknown option '--x'", "Option '--mtu <value>' argument missing"
    throw new UsageError((e as Error).message);
  }
}

/** The commands, for "unknown command" and its "did you mean". */
const COMMAND_NAMES = ['demo', 'up', 'run', 'proxy', 'check-config', 'down', 'status', 'doctor', 'reload', 'top', 'help', 'version'];

export function parseCommandLine(argv: string[]): ParsedCommand {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    const topic = rest.find((a) => !a.startsWith('-'));
    if (topic !== undefined && !COMMAND_NAMES.includes(topic)) throw unknownCommand(topic);
    return { command: 'help', topic };
  }
  if (command === '--version' || command === '-v' || command === '-V' || command === 'version') return { command: 'version' };
  if (command === 'run') return parseRun(rest);
  if (rest.includes('--help') || rest.includes('-h')) return { command: 'help', topic: command };
  switch (command) {
    case 'demo':
      if (rest.length) throw new UsageError(`demo: takes no arguments (got ${rest.join(' ')})`);
      return { command: 'demo' };
    case 'up':
      return { command: 'up', flags: parse(rest, GATEWAY_OPTIONS) };
    case 'proxy':
      return { command: 'proxy', flags: parse(rest, PROXY_OPTIONS) };
    case 'check-config': {
      if (rest.length !== 1 || rest[0].startsWith('-')) throw new UsageError('check-config: give exactly one FILE');
      return { command: 'check-config', file: rest[0] };
    }
    case 'down': {
      const f = parse<{ 'state-dir'?: string }>(rest, { 'state-dir': { type: 'string' } });
      return { command: 'down', stateDir: f['state-dir'] };
    }
    case 'status': {
      const f = parse<{ 'state-dir'?: string; json?: boolean }>(rest, { 'state-dir': { type: 'string' }, json: { type: 'boolean' } });
      return { command: 'status', stateDir: f['state-dir'], json: f.json === true };
    }
    case 'doctor': {
      const f = parse<{ 'state-dir'?: string; table?: string; 'rule-priority'?: string }>(rest, {
        'state-dir': { type: 'string' },
        table: { type: 'string' },
        'rule-priority': { type: 'string' },
      });
      const int = (name: string, v: string | undefined, min: number, max: number) => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`doctor: --${name} must be a whole number from ${min} to ${max} (got "${v}")`);
        return n;
      };
      return { command: 'doctor', stateDir: f['state-dir'], table: int('table', f.table, 1, 2 ** 31 - 1), rulePriority: int('rule-priority', f['rule-priority'], 1, 32000) };
    }
    case 'reload': {
      const f = parse<{ 'state-dir'?: string; force?: boolean }>(rest, { 'state-dir': { type: 'string' }, force: { type: 'boolean' } });
      return { command: 'reload', stateDir: f['state-dir'], force: f.force === true };
    }
    case 'top':
      return { command: 'top', options: parseTop(rest) };
    default:
      throw unknownCommand(command);
  }
}

function unknownCommand(command: string): UsageError {
  const near = didYouMean(command.replace(/^-+/, ''), COMMAND_NAMES);
  return new UsageError(`unknown command "${command}"${near ? ` (did you mean ${near}?)` : ''}; the commands: ${COMMAND_NAMES.join(', ')}`);
}

function parseTop(argv: string[]): TopOptions {
  const f = parse<{ control?: string; 'secret-file'?: string; once?: boolean; filter?: string; sort?: string; interval?: string }>(argv, {
    control: { type: 'string' },
    'secret-file': { type: 'string' },
    once: { type: 'boolean' },
    filter: { type: 'string' },
    sort: { type: 'string' },
    interval: { type: 'string' },
  });
  const sort = f.sort ?? 'bytes';
  if (sort !== 'bytes' && sort !== 'age' && sort !== 'host' && sort !== 'rule') throw new UsageError(`--sort: "${sort}" is not bytes, age, host or rule`);
  const interval = f.interval ?? '1000';
  if (!/^\d+$/.test(interval) || Number(interval) < 100) throw new UsageError(`--interval: "${interval}" is not a number of milliseconds (100 or more)`);
  return {
    control: f.control ?? '127.0.0.1:9090',
    ...(f['secret-file'] !== undefined ? { secretFile: f['secret-file'] } : {}),
    once: f.once === true,
    ...(f.filter !== undefined ? { filter: f.filter } : {}),
    sort,
    intervalMs: Number(interval),
  };
}

function parseRun(argv: string[]): ParsedCommand {
  const sep = argv.indexOf('--');
  const own = sep < 0 ? argv : argv.slice(0, sep);
  if (own.includes('--help') || own.includes('-h')) return { command: 'help', topic: 'run' };
  const cmd = sep < 0 ? [] : argv.slice(sep + 1);
  if (cmd.length === 0) throw new UsageError('run: give the program after --, as in: tunsteer run -- curl https://example.com');
  for (const a of own) {
    if (a.startsWith('--') && !RUN_FLAGS.has(a.split('=')[0])) throw new UsageError(`run: ${a.split('=')[0]} does not apply to run`);
  }
  return { command: 'run', flags: parse(own, GATEWAY_OPTIONS), argv: cmd };
}
