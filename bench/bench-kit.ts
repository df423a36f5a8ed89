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

/** A wrk latency figure ("105.00us", "6.90ms", "1.2s") in ms; NaN when absent. */
export function toMs(v: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v ?? '');
  if (!m) return NaN;
  const x = Number(m[1]);
  return m[2] === 'us' ? x / 1000 : m[2] === 's' ? x * 1000 : x;
}
