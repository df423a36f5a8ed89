// Preloaded into the gateway by bench/lean.ts (NODE_OPTIONS=--import): SIGURG runs a full
// collection in a process started with --expose-gc (the data plane), so "RSS per idle
// connection" is measured after a GC has settled, not at whatever garbage V8 last left.
// SIGURG: ignored by default, so a process without this preload is not harmed by it.
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) process.on('SIGURG', () => gc());
