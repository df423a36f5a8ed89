// `tunsteer top`: the live connections in the terminal, from the control
// API (for a host without a browser). Refreshes every second until q or
// Ctrl-C; --once prints one table and exits (for scripts and tests). The
// secret, when the API has one, comes from TUNSTEER_CONTROL_SECRET or
// --secret-file, never from an argument other users could read in ps.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../config/config-error.js';
import type { ListedConnection } from '../../control/contracts.js';

export interface TopOptions {
  control: string;
  secretFile?: string;
  once: boolean;
  /** Only connections whose host, rule, upstream or addresses contain this. */
  filter?: string;
  sort: 'bytes' | 'age' | 'host' | 'rule';
  intervalMs: number;
}

/** A connection as GET /connections lists it, tunsteer's own fields (clash-shapes.ts). */
type Listed = ListedConnection;

export interface TopSnapshot {
  connections: Listed[];
  uploadTotal: number;
  downloadTotal: number;
  /** Bytes per second now, when known. */
  rate?: { up: number; down: number };
}

export async function top(o: TopOptions): Promise<number> {
  const secret = readTopSecret(o.secretFile);
  const base = `http://${o.control}`;
  const get = async (path: string) => {
    const res = await fetch(base + path, { headers: secret ? { authorization: `Bearer ${secret}` } : {} });
    if (res.status === 401) throw new Error(`${base}: 401 Unauthorized (set TUNSTEER_CONTROL_SECRET or --secret-file)`);
    if (!res.ok) throw new Error(`${base}${path}: ${res.status} ${res.statusText}`);
    return res.json() as Promise<unknown>;
  };
  const snapshot = async (): Promise<TopSnapshot> => {
    const [c, t] = (await Promise.all([get('/connections'), get('/tunsteer/traffic')])) as [
      { connections: { tunsteer: Listed }[]; uploadTotal: number; downloadTotal: number },
      { samples: { up: number; down: number }[] },
    ];
    const last = t.samples.at(-1);
    return {
      connections: c.connections.map((x) => x.tunsteer),
      uploadTotal: c.uploadTotal,
      downloadTotal: c.downloadTotal,
      ...(last ? { rate: { up: last.up, down: last.down } } : {}),
    };
  };
  const width = () => process.stdout.columns || 120;
  try {
    if (o.once) {
      process.stdout.write(renderTop(await snapshot(), o, Date.now(), width()));
      return 0;
    }
    await loop(async () => {
      const text = renderTop(await snapshot(), o, Date.now(), width());
      process.stdout.write(`\x1b[H\x1b[2J${text}`);
    }, o.intervalMs);
    return 0;
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code;
    process.stderr.write(`tunsteer: top: ${cause === 'ECONNREFUSED' ? `nothing answers at ${base} (start up with --control ${o.control})` : (e as Error).message}\n`);
    return 1;
  }
}

function readTopSecret(file: string | undefined): string | undefined {
  if (file === undefined) return process.env.TUNSTEER_CONTROL_SECRET || undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new ConfigError(`--secret-file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** Redraws until q, Ctrl-C or the end of stdin. */
function loop(draw: () => Promise<void>, intervalMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout;
    const stop = () => {
      clearTimeout(timer);
      if (process.stdin.isTTY) process.stdin.setRawMode(false);
      process.stdin.pause();
      resolve();
    };
    const tick = () =>
      draw().then(
        () => void (timer = setTimeout(() => void tick(), intervalMs)),
        (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      process.stdin.on('data', (d: Buffer) => {
        if (d[0] === 0x71 || d[0] === 0x03) stop(); // q, Ctrl-C
      });
    }
    process.once('SIGINT', stop);
    void tick();
  });
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/** One screen: a header with totals and rates, then one row per connection, sorted, filtered, cut to the width. */
export function renderTop(s: TopSnapshot, o: Pick<TopOptions, 'filter' | 'sort'>, now: number, width: number): string {
  const f = o.filter?.toLowerCase();
  const rows = s.connections.filter((c) => !f || [c.host, c.rule, c.upstream, c.src, c.dst].some((x) => x?.toLowerCase().includes(f)));
  const by: Record<TopOptions['sort'], (a: Listed, b: Listed) => number> = {
    bytes: (a, b) => b.up + b.down - (a.up + a.down),
    age: (a, b) => a.start - b.start,
    host: (a, b) => (a.host ?? a.dst).localeCompare(b.host ?? b.dst),
    rule: (a, b) => a.rule.localeCompare(b.rule),
  };
  rows.sort(by[o.sort]);
  const rate = s.rate ? `  up ${humanBytes(s.rate.up)}/s  down ${humanBytes(s.rate.down)}/s` : '';
  const head = `${rows.length}${f ? ` of ${s.connections.length}` : ''} connections${rate}  (total up ${humanBytes(s.uploadTotal)}, down ${humanBytes(s.downloadTotal)})`;
  const cols = ['ID', 'INBOUND', 'SOURCE', 'DESTINATION', 'HOST', 'RULE', 'VIA', 'UP', 'DOWN', 'AGE'];
  const table = [cols, ...rows.map((c) => [c.id, c.inbound, c.src, c.dst, c.host ?? '', c.rule, c.upstream ?? c.action, humanBytes(c.up), humanBytes(c.down), age(now - c.start)])];
  const widths = cols.map((_, i) => Math.max(...table.map((r) => r[i].length)));
  const lines = table.map((r) =>
    r
      .map((cell, i) => (i >= 7 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd()
      .slice(0, width),
  );
  return [head.slice(0, width), ...lines].join('\n') + '\n';
}
