// What every benchmark script needs: teardowns run once at the end (also on
// SIGINT), medians, a process's CPU seconds, and polling for a condition.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new directory under the system's tmp, removed at teardown (a bench leaves no file behind). */
export function tempDir(host: { teardown: (fn: () => unknown) => void }, prefix = 'tsE-bench-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  host.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function teardownHost(): { host: { teardown: (fn: () => unknown) => void }; cleanup: () => Promise<void> } {
  const teardowns: (() => unknown)[] = [];
  const cleanup = async () => {
    for (const fn of teardowns.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // keep cleaning
      }
    }
  };
  process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
  return { host: { teardown: (fn) => void teardowns.push(fn) }, cleanup };
}

/** Runs a benchmark's main, cleaning up after it either way; a failure exits 1. */
export function runBench(main: () => Promise<void>, cleanup: () => Promise<void>): void {
  main().then(
    () => cleanup(),
    async (e) => {
      console.error(e);
      await cleanup();
      process.exit(1);
    },
  );
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** User + system CPU seconds of the processes (those gone count 0). */
export function cpuSeconds(pids: number[]): number {
  let s = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      s += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // gone
    }
  }
  return s;
}

export async function waitFor(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await cond().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out waiting');
}

/** Jiffies of all CPUs from /proc/stat: busy (not idle or iowait) and total. */
function cpuJiffies(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/**
 * How busy the machine was between start() and end(): every process's CPU
 * (ours and others'), in cores, and the load averages; a figure measured on a
 * busy machine is read with that in mind.
 */
export function machineLoad(): { end(): { busyCores: number; cores: number; load1: number; text: string } } {
  const a = cpuJiffies();
  return {
    end() {
      const b = cpuJiffies();
      const cores =
        readFileSync('/proc/cpuinfo', 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('processor')).length || 1;
      const busyCores = ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * cores;
      const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
      return { busyCores, cores, load1, text: `machine busy ${busyCores.toFixed(2)} of ${cores} cores (all processes), load average ${load1.toFixed(2)}` };
    },
  };
}

/** Resident bytes of the processes (those gone count 0). */
export function rssBytes(pids: number[]): number {
  let b = 0;
  for (const pid of pids) {
    try {
      b += Number(/^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return b;
}

/**
 * Where a process's resident memory is, from /proc/PID/smaps_rollup, in bytes: rss; pss (shared
 * pages split among the processes that map them); uss, the process's own pages (private clean +
 * dirty: what it would give back on exit); anon (heap, stacks, V8); file (mapped files, mostly
 * node's own binary text, shared by every node process on the machine). Zeros once gone.
 */
export function memOf(pid: number): { rss: number; pss: number; uss: number; anon: number; file: number } {
  const out = { rss: 0, pss: 0, uss: 0, anon: 0, file: 0 };
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(t)?.[1] ?? 0) * 1024;
    out.rss = kb('Rss');
    out.pss = kb('Pss');
    out.uss = kb('Private_Clean') + kb('Private_Dirty');
    out.anon = kb('Anonymous');
    out.file = out.rss - out.anon;
  } catch {
    // gone
  }
  return out;
}

/** memOf() of each process as "rss R (uss U, anon A, file F) MB". */
export function memText(pids: number[]): string {
  const mb = (b: number) => (b / 1048576).toFixed(1);
  return pids
    .map((p) => {
      const m = memOf(p);
      return `rss ${mb(m.rss)} (uss ${mb(m.uss)}, anon ${mb(m.anon)}, file ${mb(m.file)})`;
    })
    .join(' + ');
}

/** A wrk latency figure ("105.00us", "6.90ms", "1.2s") in ms; NaN when absent. */
export function toMs(v: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v ?? '');
  if (!m) return NaN;
  const x = Number(m[1]);
  return m[2] === 'us' ? x / 1000 : m[2] === 's' ? x * 1000 : x;
}
