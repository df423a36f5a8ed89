// HTTP requests/s through the gateway with 1,000 rules loaded versus none,
// and versus the kernel path, in one run (issue 4). wrk against nginx's
// /hello: a new connection per request, and keep-alive with 64 connections.
//   kernel            wrk → nginx over the veth, no gateway
//   tunsteer          route-all, no rules (HTTP inspected: a log line per request)
//   tunsteer, 1k      route-all, 1,000 rules none of which match (names, suffixes, CIDRs),
//                     so every connection is sniffed and looked up in full
//   tunsteer, opaque  route-all, no rules, --no-http-inspect (bytes relayed, no HTTP parsing)
// Median of RUNS runs of SECONDS s; namespaces of its own, removed afterwards.
//   node --import tsx bench/http-rules.ts [--quick]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { nsExec } from '../test/helpers/netns.js';
import { NGINX_IP, makeTopology, startGateway, startNginx, waitForGateway } from '../test/helpers/topology.js';
import { median, runBench, teardownHost, tempDir } from './bench-kit.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const SECONDS = values.quick ? 2 : 5;
const RUNS = values.quick ? 1 : 3;
const { host, cleanup } = teardownHost();

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
}

function ms(s: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(s);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

async function wrk(ns: string, connections: number, close: boolean): Promise<WrkResult> {
  const runs: WrkResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    const argv = ['wrk', '-t', String(Math.min(2, connections)), '-c', String(connections), '-d', `${SECONDS}s`, '--latency', '--timeout', '5s'];
    if (close) argv.push('-H', 'Connection: close');
    const r = await nsExec(ns, [...argv, `http://${NGINX_IP}/hello`], { timeoutMs: (SECONDS + 30) * 1000 });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
    runs.push({ rps, p50: ms(/\s50%\s+(\S+)/.exec(r.stdout)?.[1] ?? ''), p99: ms(/\s99%\s+(\S+)/.exec(r.stdout)?.[1] ?? '') });
  }
  return { rps: median(runs.map((r) => r.rps)), p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) };
}

function thousandRules(): string {
  const lines = ['rules:'];
  for (let i = 0; i < 400; i++) lines.push(`  - { domain: h${i}.bench.example, action: reject }`);
  for (let i = 0; i < 300; i++) lines.push(`  - { domain_suffix: s${i}.bench.example, action: reject }`);
  for (let i = 0; i < 200; i++) lines.push(`  - { cidr: 198.51.${100 + (i >> 8)}.${i & 255}/32, action: reject }`);
  for (let i = 0; i < 100; i++) lines.push(`  - { domain_keyword: kw${i}x, port: ${1000 + i}, action: reject }`);
  return lines.join('\n') + '\n';
}

const CASES: [string, number, boolean][] = [
  ['new connection per request, 16 conns', 16, true],
  ['keep-alive, 1 conn', 1, false],
  ['keep-alive, 64 conns', 64, false],
];

async function main() {
  const topo = await makeTopology(host);
  await startNginx(host, topo);
  const results = new Map<string, WrkResult[]>();
  const kernel: WrkResult[] = [];
  for (const [, c, close] of CASES) kernel.push(await wrk(topo.client, c, close));
  results.set('kernel', kernel);
  const rulesFile = join(tempDir(host), 'rules.yaml');
  writeFileSync(rulesFile, thousandRules());
  const variants: [string, string[]][] = [
    ['tunsteer', []],
    ['tunsteer, 1,000 rules', ['--config', rulesFile]],
    ['tunsteer, --no-http-inspect', ['--no-http-inspect']],
  ];
  let n = 0;
  for (const [name, extra] of variants) {
    const dir = tempDir(host);
    const gw = startGateway(host, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', `tsh${n++}`, '--log-level', 'warn', ...extra]);
    await waitForGateway(topo.client, dir, gw);
    const out: WrkResult[] = [];
    for (const [, c, close] of CASES) out.push(await wrk(topo.client, c, close));
    results.set(name, out);
    gw.kill('SIGTERM');
    await gw.exited();
  }
  console.log(`HTTP through the gateway, wrk -t2 --latency against nginx /hello, median of ${RUNS} x ${SECONDS} s; ${new Date().toISOString()}; node ${process.version}\n`);
  console.log('| path | case | req/s | vs kernel | p50 ms | p99 ms |\n| --- | --- | ---: | ---: | ---: | ---: |');
  for (const [name, rs] of results) {
    rs.forEach((r, i) => {
      console.log(`| ${name} | ${CASES[i][0]} | ${Math.round(r.rps)} | ${(r.rps / kernel[i].rps).toFixed(2)}x | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
    });
  }
}

runBench(main, cleanup);
