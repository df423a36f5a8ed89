// What every benchmark script needs: teardowns run once at the end (also on
// SIGINT), medians, a process's CPU seconds, and polling for a condition.
import { readFileSync } from 'node:fs';

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
