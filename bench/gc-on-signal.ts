// Preloaded into the gateway by bench/lean.ts (NODE_OPTIONS=--import): SIGURG runs a full,
// compacting collection (the one the data plane's idle GC runs), so "RSS per idle connection" and
// "an idle gateway's RSS" are measured after a GC has settled, not at whatever garbage and
// fragmentation V8 last left. A process started without --expose-gc (the supervisor) gets gc()
// through the V8 flag at run time, for the bench only.
// SIGURG: ignored by default, so a process without this preload is not harmed by it.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { compactingGc } from '../src/data-plane/idle-gc.js';

let gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  setFlagsFromString('--expose-gc');
  gc = runInNewContext('gc') as () => void;
}
const collect = gc;
process.on('SIGURG', () => compactingGc(collect));
