// Starting a stack worker's thread (stack-worker.ts): from dist, the module
// itself; from source (tests, `--import tsx`), tsx first, since a worker does
// not inherit the parent's loader hooks.
import { Worker } from 'node:worker_threads';
import type { WorkerInit } from './messages.js';

const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(`./stack-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);

/** A worker thread on stack-worker; run from source (tests, `--import tsx`), it loads tsx first: a worker does not inherit the parent's loader hooks. */
export function newWorker(workerData: WorkerInit): Worker {
  if (!fromSource) return new Worker(workerUrl, { workerData });
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
