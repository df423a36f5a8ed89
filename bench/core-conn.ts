// The proxy core's cost per connection, in one process, without the stack or the TUN:
// COUNT connections (CONC at a time) each hand the core an in-memory inbound whose
// client sends one HTTP request with Connection: close; the core sniffs, decides,
// dials a real socket to a small server on 127.0.0.1 (it answers and closes, as
// nginx does), serves the request through the HTTP relay, and logs (at warn, as
// the benches run). CPU µs per connection from process.cpuUsage, which other load
// on the machine disturbs far less than a rate (the client and server in the same
// process cost the same for every build, so compare builds, not absolutes).
// Each (build, run) in a fresh node process, builds interleaved run by run.
//
//   node --import tsx bench/core-conn.ts [--count 20000] [--conc 16] [--runs 5] [--byte] [--requests N] [--root DIR[,DIR...]]
// --root: builds to compare (their dist/), default this worktree's; --byte: the client
// sends 1 byte ('x') and reads the echo instead of an HTTP request (an echo server).
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import v8 from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { memoryPair } from '../test/helpers/proxy-fakes.js';
import { ROOT } from '../test/helpers/topology.js';
import { median } from './bench-kit.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string' },
    conc: { type: 'string' },
    runs: { type: 'string' },
    root: { type: 'string' },
    child: { type: 'string' },
    byte: { type: 'boolean' },
    requests: { type: 'string' },
  },
});
const COUNT = Number(values.count ?? 20000);
const CONC = Number(values.conc ?? 16);
const RUNS = Number(values.runs ?? 5);
const RESPONSE = 'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n';
const REQUEST = 'GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\nConnection: close\r\n\r\n';
const RESPONSE_KA = 'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n';
const REQUEST_KA = 'GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n\r\n';
/** --requests N: N requests on each connection, kept alive, the last with Connection: close. */
const REQUESTS = Number(values.requests ?? 1);

async function child(root: string): Promise<void> {
  const { ProxyCore } = (await import(pathToFileURL(join(root, 'dist/src/proxy/proxy-core.js')).href)) as typeof import('../src/proxy/proxy-core.js');
  const { createLogger } = (await import(pathToFileURL(join(root, 'dist/src/logging/log.js')).href)) as typeof import('../src/logging/log.js');
  const onServer = (s: net.Socket) => {
    s.on('error', () => {});
    if (values.byte) {
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
      return;
    }
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      // one answer per request head; the one that says Connection: close is answered and closed
      for (let at = got.indexOf('\r\n\r\n'); at >= 0; at = got.indexOf('\r\n\r\n')) {
        const head = got.slice(0, at);
        got = got.slice(at + 4);
        if (head.includes('Connection: close')) s.end(RESPONSE);
        else s.write(RESPONSE_KA);
      }
    });
    s.on('end', () => {
      if (!s.writableEnded) s.end();
    });
  };
  // 16 listening ports: loopback's TIME-WAITs (both ends are this host) would use up one port's 4-tuples
  const servers = await Promise.all(
    Array.from({ length: 16 }, async () => {
      const server = net.createServer({ allowHalfOpen: true }, onServer);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return server;
    }),
  );
  const ports = servers.map((x) => (x.address() as net.AddressInfo).port);
  const core = new ProxyCore({
    log: createLogger(process.env.CORE_LOG === '1' ? 'info' : 'warn', { write: (l: string) => void (process.env.CORE_LOG === '1' && process.stderr.write(l)) }),
    connectTimeoutMs: 2000,
    localAddress: '127.0.0.1',
    localAddress6: null,
  });
  let id = 1;
  const one = () =>
    new Promise<void>((resolve) => {
      const [ours, app] = memoryPair();
      let down = 0;
      let answered = 0;
      app.on('data', (d: Buffer) => {
        down += d.length;
        if (values.byte) app.end();
        // the next request once this response is in (responses are the same length)
        else if (down >= (answered + 1) * RESPONSE_KA.length && ++answered < REQUESTS) app.write(answered === REQUESTS - 1 ? REQUEST : REQUEST_KA);
      });
      app.on('error', () => resolve());
      // the client closes once the response is in (as wrk does); done when both sides have closed
      app.on('end', () => app.end());
      app.on('close', () => resolve());
      core.handle({
        id: id++,
        inbound: 'tun',
        protocol: 'tcp',
        src: { family: 4, address: '192.0.2.10', port: 40000 + (id % 20000) },
        dst: { family: 4, address: '127.0.0.1', port: ports[id % ports.length] },
        accept: () => {
          setImmediate(() => app.write(values.byte ? 'x' : REQUESTS > 1 ? REQUEST_KA : REQUEST));
          return ours;
        },
        reject: () => resolve(),
        counters: () => ({ up: ours.sent, down }),
      });
    });
  const runBatch = async (n: number) => {
    let left = n;
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (left-- > 0) await one();
      }),
    );
  };
  await runBatch(2000); // warm-up: JIT, pools
  // heap bytes allocated per connection: with a young generation large enough that no scavenge
  // runs (--min-semi-space-size, set by main), the growth of the used heap over ALLOC_N connections
  const used = () => v8.getHeapSpaceStatistics().reduce((a, x) => a + x.space_used_size, 0);
  const ALLOC_N = Math.max(50, Math.round(1000 / REQUESTS));
  (globalThis as { gc?: () => void }).gc?.();
  let gcs = 0;
  const obs = new PerformanceObserver((l) => void (gcs += l.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  const h0 = used();
  await runBatch(ALLOC_N);
  const allocPerConn = (used() - h0) / ALLOC_N;
  await new Promise((r) => setImmediate(r)); // the observer's entries are delivered asynchronously
  obs.disconnect();
  if (gcs > 0) console.error(`core-conn: ${gcs} GCs ran while allocations were counted: the figure is low`);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await runBatch(COUNT);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  for (const x of servers) x.close();
  // a preloaded heap sampler (inspector HeapProfiler with collected objects) may hook here to write its profile
  await (globalThis as { __stopHeap?: () => Promise<void> }).__stopHeap?.();
  console.log(
    JSON.stringify({
      allocPerConn,
      allocGcs: gcs,
      cpuUsPerConn: (c.user + c.system) / COUNT,
      perSec: COUNT / (ms / 1000),
      failed: core.counters.failed,
      total: core.counters.total,
    }),
  );
  process.exit(0);
}

function main(): void {
  const roots = values.root?.split(',') ?? [ROOT];
  console.log(
    `load average before: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}  (${new Date().toISOString()}), ${COUNT} connections x ${RUNS} runs, ${CONC} at a time`,
  );
  const results = new Map<string, { cpu: number; rate: number; alloc: number }[]>(roots.map((r) => [r, []]));
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? roots : [...roots].reverse();
    for (const root of order) {
      const r = spawnSync(
        process.execPath,
        [
          '--expose-gc',
          '--min-semi-space-size=64',
          '--max-semi-space-size=64',
          '--import',
          'tsx',
          import.meta.filename,
          '--child',
          root,
          '--count',
          String(COUNT),
          '--conc',
          String(CONC),
          '--requests',
          String(REQUESTS),
          ...(values.byte ? ['--byte'] : []),
        ],
        {
          encoding: 'utf8',
          timeout: 300_000,
        },
      );
      const line = r.stdout.trim().split('\n').pop() ?? '';
      if (!line.startsWith('{')) {
        console.log(`${root}: failed: ${r.stderr.slice(-500)}`);
        continue;
      }
      const j = JSON.parse(line) as { allocPerConn: number; cpuUsPerConn: number; perSec: number; failed: number };
      results.get(root)!.push({ cpu: j.cpuUsPerConn, rate: j.perSec, alloc: j.allocPerConn });
      console.log(
        `  run ${run + 1} ${root}: ${(j.allocPerConn / 1024).toFixed(2)} KB heap allocated/conn, ${j.cpuUsPerConn.toFixed(1)} µs CPU/conn, ${j.perSec.toFixed(0)} conn/s, failed ${j.failed}; load ${loadavg()[0].toFixed(2)}`,
      );
    }
  }
  console.log('medians:');
  for (const [root, xs] of results)
    console.log(
      `  ${root}: ${(median(xs.map((x) => x.alloc)) / 1024).toFixed(2)} KB allocated/conn, ${median(xs.map((x) => x.cpu)).toFixed(1)} µs CPU/conn, ${median(xs.map((x) => x.rate)).toFixed(0)} conn/s`,
    );
  console.log(
    `load average after: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
}

if (values.child) await child(values.child);
else main();
