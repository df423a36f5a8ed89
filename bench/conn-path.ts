// The connection path of issue 16 item 3, A/B in one run with the kernel path beside:
//   close  wrk, 16 connections, a new connection per request (Connection: close), nginx /hello
//   loop   one client, connect / send 1 byte / read the echo / close, COUNT in a row (a Node
//          echo server behind): per-connection p50 / p99 / p99.9
//   ka     wrk -c 1 -t 1 --latency keep-alive: p50 / p90 / p99 / max
// Each round runs the kernel path, then every build (this worktree's dist/, and --compare DIR
// for another build's dist/, e.g. the base commit built in a copy), each on a fresh gateway
// (--workers 1, --log-level warn); medians over the rounds at the end, the load average
// around each round. --prof DIR: the gateway processes of this build run with --cpu-prof
// (and --heap-prof with --heap) into DIR, written when the gateway stops; --trace-gc: the
// data plane's GC lines go to DIR/trace-gc-N.txt (needs --prof).
//
//   node --import tsx bench/conn-path.ts [--rounds 3] [--seconds 4] [--count 3000]
//        [--only close,loop,ka] [--compare /tmp/cp-base[,/tmp/cp-lever1...]] [--prof DIR [--heap] [--trace-gc]]
//        [-- extra gateway flags]
// Builds and removes its own namespaces; traffic stays between them; every load is bounded.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { NGINX_IP, PEER_IP, ROOT, makeTopology, startNginx, waitForGateway } from '../test/helpers/topology.js';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { cpuSeconds, median, runBench, teardownHost, toMs, waitFor } from './bench-kit.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string' },
    seconds: { type: 'string' },
    count: { type: 'string' },
    only: { type: 'string' },
    compare: { type: 'string' },
    prof: { type: 'string' },
    heap: { type: 'boolean' },
    'trace-gc': { type: 'boolean' },
  },
});
const ROUNDS = Number(values.rounds ?? 3);
const SECONDS = Number(values.seconds ?? 4);
const COUNT = Number(values.count ?? 3000);
const only = values.only?.split(',') ?? ['close', 'loop', 'ka'];
const ECHO_PORT = 7100;
const { host, cleanup } = teardownHost();
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** The echo server: reads, echoes, ends when the client ends. */
const ECHO_SERVER = `
const net = require('net');
net.createServer((s) => { s.on('data', (d) => s.write(d)); s.on('end', () => s.end()); s.on('error', () => {}); })
  .listen(${ECHO_PORT}, process.argv[1], 1024);
setTimeout(() => process.exit(0), 3600e3);`;

/** connect, 1 byte, its echo, close; COUNT times in a row, bounded by MAX_S; prints the latencies' percentiles. */
const LOOP_CLIENT = `
const net = require('net');
const [host, port, count, maxS] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])];
const until = Date.now() + maxS * 1000;
const ms = [];
let failed = 0;
function one() {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect({ host, port, noDelay: true });
    s.setTimeout(3000, () => { failed++; s.destroy(); resolve(); });
    s.on('connect', () => s.write('x'));
    s.once('data', () => { ms.push(Number(process.hrtime.bigint() - t0) / 1e6); s.end(); });
    s.on('close', () => resolve());
    s.on('error', () => { failed++; });
  });
}
(async () => {
  const t0 = Date.now();
  for (let i = 0; i < count && Date.now() < until; i++) await one();
  const secs = (Date.now() - t0) / 1000;
  ms.sort((a, b) => a - b);
  const p = (q) => ms[Math.min(ms.length - 1, Math.floor(ms.length * q))] ?? NaN;
  console.log(JSON.stringify({ n: ms.length, failed, perSec: ms.length / secs, p50: p(0.5), p99: p(0.99), p999: p(0.999) }));
})();`;

interface Wrk {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}
async function wrk(ns: string, conns: number, close: boolean): Promise<Wrk> {
  const r = await nsExec(
    ns,
    ['wrk', '-t', String(Math.min(2, conns)), '-c', String(conns), '-d', `${SECONDS}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://${NGINX_IP}/hello`],
    { timeoutMs: (SECONDS + 30) * 1000 },
  );
  const pct = (p: string) => toMs(new RegExp(`^\\s*${p}%\\s+([\\d.]+\\w+)`, 'm').exec(r.stdout)?.[1]);
  const max = toMs(/^\s*Latency\s+\S+\s+\S+\s+([\d.]+\w+)/m.exec(r.stdout)?.[1]);
  return { rps: Number(/Requests\/sec:\s*([\d.]+)/.exec(r.stdout)?.[1] ?? 0), p50: pct('50'), p90: pct('90'), p99: pct('99'), max };
}

interface Loop {
  n: number;
  failed: number;
  perSec: number;
  p50: number;
  p99: number;
  p999: number;
}
async function loop(ns: string): Promise<Loop> {
  const r = await nsExec(ns, [process.execPath, '-e', LOOP_CLIENT, PEER_IP, String(ECHO_PORT), String(COUNT), String(SECONDS * 5)], {
    timeoutMs: (SECONDS * 5 + 30) * 1000,
  });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Loop;
}

interface Row {
  close?: Wrk;
  loop?: Loop;
  ka?: Wrk;
  cpuPerConn?: number;
}
async function measure(ns: string, pids: () => number[]): Promise<Row> {
  const row: Row = {};
  if (only.includes('close')) {
    const c0 = cpuSeconds(pids());
    row.close = await wrk(ns, 16, true);
    row.cpuPerConn = ((cpuSeconds(pids()) - c0) / (row.close.rps * SECONDS)) * 1e6;
  }
  if (only.includes('loop')) row.loop = await loop(ns);
  if (only.includes('ka')) row.ka = await wrk(ns, 1, false);
  return row;
}

async function main() {
  console.log(`load average before: ${load()}  (${new Date().toISOString()})`);
  const topo = await makeTopology(host);
  await startNginx(host, topo);
  await nsExec(topo.servers, ['ip', 'addr', 'add', `${PEER_IP}/32`, 'dev', 'lo'], { allowFail: true });
  spawnInNs(host, topo.servers, [process.execPath, '-e', ECHO_SERVER, PEER_IP]);
  await waitFor(async () => (await nsExec(topo.servers, ['ss', '-Hltn', `src ${PEER_IP}:${ECHO_PORT}`])).stdout.trim() !== '');

  // --compare DIR[,DIR...]: each labelled by its directory's name
  const builds = [{ label: values.compare ? 'this' : 'tunsteer', root: ROOT }, ...(values.compare?.split(',') ?? []).map((root) => ({ label: basename(root), root }))];
  const rows: Record<string, Row[]> = { kernel: [] };
  for (const b of builds) rows[b.label] = [];
  let gwRun = 0;
  for (let round = 0; round < ROUNDS; round++) {
    console.log(`round ${round + 1}: load ${load()}`);
    rows.kernel.push(await measure(topo.client, () => []));
    print('kernel', rows.kernel.at(-1)!);
    // alternate the order of the builds from round to round: neither always runs right after the kernel path
    const order = round % 2 === 0 ? builds : [...builds].reverse();
    for (const b of order) {
      const sd = mkdtempSync(join(tmpdir(), 'tsE-cp-'));
      host.teardown(() => rmSync(sd, { recursive: true, force: true }));
      const prof = values.prof && b.root === ROOT ? values.prof : undefined;
      // on node's command line, not NODE_OPTIONS (which refuses --cpu-prof): the supervisor passes its execArgv to the data plane
      const profFlags = prof
        ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, ...(values.heap ? ['--heap-prof', `--heap-prof-dir=${prof}`] : []), ...(values['trace-gc'] ? ['--trace-gc'] : [])]
        : [];
      const gw = spawnInNs(host, topo.client, [
        process.execPath,
        ...profFlags,
        join(b.root, 'dist/src/cli/main.js'),
        'up',
        '--mode',
        'route-all',
        '--state-dir',
        sd,
        '--tun-name',
        'tscp0',
        '--log-level',
        'warn',
        '--workers',
        '1',
        ...positionals,
      ]);
      await waitForGateway(topo.client, sd, gw);
      const st = JSON.parse((await nsExec(topo.client, [process.execPath, join(b.root, 'dist/src/cli/main.js'), 'status', '--state-dir', sd, '--json'])).stdout).status;
      const pids = [gw.pid!, st.dataPlane?.pid].filter((x): x is number => typeof x === 'number');
      await new Promise((r) => setTimeout(r, 1000)); // start-up settles
      const row = await measure(topo.client, () => pids);
      rows[b.label].push(row);
      print(b.label, row);
      gw.kill('SIGTERM');
      await gw.exited();
      if (prof && values['trace-gc']) writeFileSync(join(prof, `trace-gc-${gwRun++}.txt`), gw.stdoutLines().join('\n'));
    }
  }
  console.log(`\nmedians over ${ROUNDS} rounds:`);
  for (const [label, rs] of Object.entries(rows)) {
    const m = (f: (r: Row) => number | undefined) => median(rs.map(f).filter((x): x is number => x !== undefined && !Number.isNaN(x)));
    const ratio = label === 'kernel' ? '' : ` (${(m((r) => r.close?.rps) / median(rows.kernel.map((r) => r.close?.rps ?? 0))).toFixed(3)}x kernel)`;
    const parts = [
      only.includes('close') &&
        `close ${m((r) => r.close?.rps).toFixed(0)} conn/s${ratio}, p99 ${m((r) => r.close?.p99).toFixed(2)} ms` +
          (label === 'kernel' ? '' : `, ${m((r) => r.cpuPerConn).toFixed(0)} µs CPU/conn`),
      only.includes('loop') &&
        `loop ${m((r) => r.loop?.perSec).toFixed(0)}/s p50 ${m((r) => r.loop?.p50).toFixed(3)} p99 ${m((r) => r.loop?.p99).toFixed(3)} p99.9 ${m((r) => r.loop?.p999).toFixed(3)} ms`,
      only.includes('ka') &&
        `ka p50 ${m((r) => r.ka?.p50).toFixed(3)} p90 ${m((r) => r.ka?.p90).toFixed(3)} p99 ${m((r) => r.ka?.p99).toFixed(3)} ms, ${m((r) => r.ka?.rps).toFixed(0)} req/s`,
    ].filter(Boolean);
    console.log(`  ${label.padEnd(10)} ${parts.join(' | ')}`);
  }
  console.log(`load average after: ${load()}`);
}

function print(label: string, r: Row): void {
  const parts = [
    r.close &&
      `close ${r.close.rps.toFixed(0)}/s p99 ${r.close.p99.toFixed(2)} ms${r.cpuPerConn !== undefined && label !== 'kernel' ? ` cpu ${r.cpuPerConn.toFixed(0)} µs/conn` : ''}`,
    r.loop &&
      `loop ${r.loop.perSec.toFixed(0)}/s p50 ${r.loop.p50.toFixed(3)} p99 ${r.loop.p99.toFixed(3)} p99.9 ${r.loop.p999.toFixed(3)}${r.loop.failed ? ` failed ${r.loop.failed}` : ''}`,
    r.ka && `ka p50 ${r.ka.p50.toFixed(3)} p90 ${r.ka.p90.toFixed(3)} p99 ${r.ka.p99.toFixed(3)} max ${r.ka.max.toFixed(2)} (${r.ka.rps.toFixed(0)}/s)`,
  ].filter(Boolean);
  console.log(`  ${label.padEnd(10)} ${parts.join(' | ')}`);
}

runBench(main, cleanup);
