// Preloaded into the gateway by bench/lean.ts (NODE_OPTIONS=--import): SIGURG runs a full,
// compacting collection (the one the data plane's idle GC runs) in a process started with
// --expose-gc (the data plane, the plain proxy), so "RSS per idle connection" is measured after a
// GC has settled, not at whatever garbage and fragmentation V8 last left.
// SIGURG: ignored by default, so a process without this preload is not harmed by it.
import { compactingGc } from '../src/data-plane/idle-gc.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc) process.on('SIGURG', () => compactingGc(gc));
