// Starting a stack worker's thread (stack-worker.ts): from dist, the module
// itself; from source (tests, `--import tsx`), tsx first, since a worker does
// not inherit the parent's loader hooks. A thread can also be started before
// its init is known (preloadWorkers): a data plane waiting for its config (a
// supervisor's spare, kept for --restart) loads its workers' modules
// meanwhile, so a restart does not pay for them after the crash.
import { Worker } from 'node:worker_threads';
import type { ToWorker, WorkerInit } from './messages.js';

const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(`./stack-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);

/** A worker thread on stack-worker (workerData null: it waits for an 'init' message); run from source (tests, `--import tsx`), it loads tsx first: a worker does not inherit the parent's loader hooks. */
export function newWorker(workerData: WorkerInit | null): Worker {
  if (!fromSource) return new Worker(workerUrl, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

/** A thread loading (or loaded, and waiting for its init). */
export interface PreloadedWorker {
  worker: Worker;
  /** It failed or ended before it was given its init: a fresh one is started instead. */
  gone: boolean;
}

/** n threads that load stack-worker's modules now and wait for their init (startWorker). */
export function preloadWorkers(n: number): PreloadedWorker[] {
  return Array.from({ length: n }, () => {
    const p: PreloadedWorker = { worker: newWorker(null), gone: false };
    // an 'error' with no listener would throw in this thread; startWorker's listeners hear what comes after
    p.worker.on('error', () => (p.gone = true));
    p.worker.once('exit', () => (p.gone = true));
    return p;
  });
}

/** A worker with this init: the preloaded thread when one is given and still there, else a new one. */
export function startWorker(init: WorkerInit, preloaded: PreloadedWorker | undefined): Worker {
  if (!preloaded || preloaded.gone) {
    void preloaded?.worker.terminate();
    return newWorker(init);
  }
  const m: ToWorker = { type: 'init', init };
  preloaded.worker.postMessage(m);
  return preloaded.worker;
}
