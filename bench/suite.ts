// The benchmark suite (issue 6): every path side by side in one run, one table.
//
//   paths     kernel (veth, no gateway); slirp4netns (MTU 65520); pasta (when
//             this machine lets it run); tunsteer with its defaults; tunsteer
//             with its best settings; tunsteer's REDIRECT and TPROXY inbounds
//   measures  bulk TCP, 1 and 4 streams, each direction (iperf3, median of
//             RUNS); new connections/s (wrk, a new connection per request,
//             nginx /hello); keep-alive latency p50/p99 at 1 and 64
//             connections (wrk --latency); CPU seconds of the userspace
//             process per GB moved; RSS per idle connection with IDLE held;
//             IPv6 bulk TCP beside IPv4 (1 stream each way) for the kernel
//             path and tunsteer's route-all paths
//   tunsteer  defaults, --workers 1 and --workers <cores>, each at MTU 65520
//             and 1500 (offloads on, the default); MTU 1500 with --no-tun-offload
//
//   npm run bench                 10 s per iperf3 run, 3 runs, 1,000 and 10,000 idle connections
//   npm run bench -- --quick      a few minutes: 2 s, 1 run, 1,000 idle connections
//   npm run bench -- --out FILE   also write the table (markdown) to FILE
//   --idle 1000,10000             the idle connections held, one count after the other
//   --only kernel,slirp,pasta,tunsteer,workers1,workers,mtu1500,mtu1500w1,offload,best,redirect,tproxy
//                                 a subset of the paths
//   --source                      run tunsteer from src/ with tsx, not from dist/
//
// A progress line on stderr says which path and measure it is on and about
// how long is left (one updating line on a terminal, a line per step otherwise).
//
// Builds and removes its own namespaces; traffic stays between them.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  IPERF_IP,
  IPERF_IP6,
  NGINX_IP,
  PEER_IP,
  PEER_PORT,
  ROOT,
  addIpv6,
  makeTopology,
  startIperf,
  startNginx,
  tunsteerArgv,
  waitForGateway,
  waitForPort,
} from '../test/helpers/topology.js';
import { createNetns, nsExec, spawnInNs, veth, type NsChild } from '../test/helpers/netns.js';
import { cpuSeconds, machineLoad, median, rssBytes, runBench, teardownHost, toMs, waitFor } from './bench-kit.js';
import { iperfClient } from './iperf-client.js';
import { writeCharts } from './suite-charts.js';
import { Progress, type ProgressStep } from '../src/cli/progress.js';
import { render, type Row } from './suite-report.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    seconds: { type: 'string' },
    runs: { type: 'string' },
    idle: { type: 'string' },
    out: { type: 'string' },
    only: { type: 'string' },
    source: { type: 'boolean' },
  },
});
const QUICK = values.quick === true;
const SECONDS = Number(values.seconds ?? (QUICK ? 2 : 10));
const RUNS = Number(values.runs ?? (QUICK ? 1 : 3));
const IDLES = (values.idle ?? (QUICK ? '1000' : '1000,10000')).split(',').map(Number);
const WRK_SECONDS = QUICK ? 2 : 5;

const { host, cleanup } = teardownHost();

/** The paths in the order measured, with the key --only uses, and whether IPv6 is measured on them. */
const PATHS = [
  ['kernel', true],
  ['slirp', false],
  ['pasta', false],
  ['tunsteer', true],
  ['workers1', false],
  ['workers', false],
  ['mtu1500', false],
  ['mtu1500w1', false],
  ['offload', false],
  ['best', true],
  ['redirect', false],
  ['tproxy', false],
] as const;
/** Stack workers on the 'workers' path: one per core. */
const CORES = availableParallelism();
/** The connect/request/close runs, back to back: whether the rate holds under sustained churn. */
const CONN_RUNS = 4;
/** How long idle CPU is sampled, with no connection and with the idle connections held. */
const IDLE_CPU_MS = QUICK ? 2000 : 5000;
const IPERF_RUN_MS = (SECONDS + 2) * 1000;
const WRK_RUN_MS = (WRK_SECONDS + 1) * 1000;

/** Every step of the run, with a rough estimate; the progress line corrects them by the pace it sees. */
function plannedSteps(want: (k: string) => boolean): ProgressStep[] {
  const steps: ProgressStep[] = [{ name: 'setup', estimateMs: 10_000 }];
  for (const [key, v6] of PATHS) {
    if (!want(key)) continue;
    if (key !== 'kernel') steps.push({ name: `${key}: idle connections`, estimateMs: IDLES.reduce((ms, n) => ms + 8000 + 2 * IDLE_CPU_MS + n * 3, 0) });
    steps.push({ name: `${key}: bulk TCP`, estimateMs: 4 * RUNS * IPERF_RUN_MS });
    if (v6) steps.push({ name: `${key}: IPv6 bulk TCP`, estimateMs: 2 * RUNS * IPERF_RUN_MS });
    steps.push({ name: `${key}: HTTP (wrk)`, estimateMs: (CONN_RUNS + 2 * RUNS) * WRK_RUN_MS });
  }
  return steps;
}
let progress: Progress | null = null;

interface Path {
  /** --only's key: kernel, slirp, pasta, tunsteer, best, redirect, tproxy. */
  key?: string;
  name: string;
  /** The namespace the clients run in. */
  ns: string;
  /** The userspace process(es) doing the work, for CPU and RSS; empty for the kernel path. */
  pids: () => number[];
  stop: () => Promise<void>;
  /** Also measure IPv6 bulk TCP (paths that carry IPv6 the same way as IPv4). */
  ipv6?: boolean;
}

/** Gbit/s received, and bytes moved. */
function iperf(ns: string, streams: number, reverse: boolean, server = IPERF_IP): Promise<{ gbps: number; bytes: number }> {
  return iperfClient(ns, { server, seconds: SECONDS, streams, reverse });
}

/** wrk's requests/s and latency percentiles (ms). */
async function wrk(ns: string, conns: number, newConnEach: boolean): Promise<{ rps: number; p50: number; p99: number }> {
  const threads = Math.min(2, conns);
  const args = [
    'wrk',
    '-t',
    String(threads),
    '-c',
    String(conns),
    '-d',
    `${WRK_SECONDS}s`,
    '--latency',
    ...(newConnEach ? ['-H', 'Connection: close'] : []),
    `http://${NGINX_IP}/hello`,
  ];
  const r = await nsExec(ns, args, { timeoutMs: (WRK_SECONDS + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s*([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
  const pct = (p: string) => toMs(new RegExp(`^\\s*${p}%\\s+([\\d.]+\\w+)`, 'm').exec(r.stdout)?.[1] ?? '0us');
  return { rps, p50: pct('50'), p99: pct('99') };
}

/** The processes' CPU over IDLE_CPU_MS, in % of one core. */
async function idleCpuPct(p: Path): Promise<number> {
  const c0 = cpuSeconds(p.pids());
  await new Promise((r) => setTimeout(r, IDLE_CPU_MS));
  return ((cpuSeconds(p.pids()) - c0) / (IDLE_CPU_MS / 1000)) * 100;
}

/** RSS per idle connection (over the fresh process's) and CPU with each count held; CPU with none first. */
async function idleCost(p: Path): Promise<Pick<Row, 'bytesPerIdle' | 'idleCpu' | 'heldCpu' | 'idleByCount' | 'note'>> {
  if (p.pids().length === 0) return { bytesPerIdle: null, idleCpu: null, heldCpu: null, idleByCount: [], note: '' };
  let note = '';
  const idleCpu = await idleCpuPct(p);
  const byCount: Row['idleByCount'] = [];
  // against the fresh process: after a crowd V8 keeps the heap it grew, so a later base would hide the cost
  const base = rssBytes(p.pids());
  for (const n of IDLES) {
    // --close-burst: the suite measures what is held, not the close; a paced close waits for a FIN
    // that tcp-peer never sends (it holds its side open), 60 s per count
    const holder = spawnInNs(host, p.ns, [
      'sh',
      '-c',
      `ulimit -n 65536; exec ${process.execPath} --import tsx ${join(ROOT, 'bench/hold-conns.ts')} --close-burst ${PEER_IP} ${PEER_PORT} ${n} 120000`,
    ]);
    const line = JSON.parse(await holder.waitForLine((l) => l.includes('held') || l.includes('error'), 130_000 + 2 * n));
    if (!line.held) {
      // slirp4netns opens them slowly: say how far it got and go on (a larger count would not fare better)
      await holder.exited();
      note = `${n} idle connections not held: ${line.connected ?? 0} connected before the holder's time was up`;
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
    const held = rssBytes(p.pids());
    const heldCpu = await idleCpuPct(p);
    holder.kill('SIGTERM');
    await holder.exited();
    byCount.push({ held: line.held, bytesPerIdle: (held - base) / line.held, heldCpu, rss: held });
    // let the gateway see the closes before the next count connects
    await new Promise((r) => setTimeout(r, 2000));
  }
  return { bytesPerIdle: byCount[0]?.bytesPerIdle ?? null, idleCpu, heldCpu: byCount[0]?.heldCpu ?? null, idleByCount: byCount, note };
}

async function measure(p: Path): Promise<Row> {
  const at = (what: string) => progress?.step(`${p.key}: ${what}`);
  // Memory first, on a fresh process: after the bulk runs V8's heap holds garbage that a
  // collection during the hold gives back, and the per-connection figure came out negative.
  const load = machineLoad();
  if (p.pids().length) at('idle connections');
  const idle = await idleCost(p);
  at('bulk TCP');
  const up1: number[] = [],
    down1: number[] = [],
    up4: number[] = [],
    down4: number[] = [];
  let bytes = 0;
  const cpu0 = cpuSeconds(p.pids());
  for (let i = 0; i < RUNS; i++) {
    for (const [arr, streams, rev] of [
      [up1, 1, false],
      [down1, 1, true],
      [up4, 4, false],
      [down4, 4, true],
    ] as const) {
      const r = await iperf(p.ns, streams, rev);
      arr.push(r.gbps);
      bytes += r.bytes;
    }
  }
  const cpu = cpuSeconds(p.pids()) - cpu0;
  const up1v6: number[] = [],
    down1v6: number[] = [];
  if (p.ipv6) at('IPv6 bulk TCP');
  for (let i = 0; p.ipv6 && i < RUNS; i++) {
    up1v6.push((await iperf(p.ns, 1, false, IPERF_IP6)).gbps);
    down1v6.push((await iperf(p.ns, 1, true, IPERF_IP6)).gbps);
  }
  const cc: number[] = [],
    l1: { p50: number; p99: number }[] = [],
    l64: { p50: number; p99: number }[] = [];
  at('HTTP (wrk)');
  const conn: { rps: number; p50: number; p99: number }[] = [];
  for (let i = 0; i < CONN_RUNS; i++) conn.push(await wrk(p.ns, 16, true));
  cc.push(...conn.map((c) => c.rps));
  for (let i = 0; i < RUNS; i++) {
    l1.push(await wrk(p.ns, 1, false));
    l64.push(await wrk(p.ns, 64, false));
  }
  return {
    path: p.name,
    up1: median(up1),
    down1: median(down1),
    up4: median(up4),
    down4: median(down4),
    connPerSec: median(cc),
    p50x1: median(l1.map((x) => x.p50)),
    p99x1: median(l1.map((x) => x.p99)),
    p50x64: median(l64.map((x) => x.p50)),
    p99x64: median(l64.map((x) => x.p99)),
    cpuPerGb: p.pids().length ? cpu / (bytes / 1e9) : null,
    ...idle,
    connRuns: conn.map((c) => c.rps),
    connP50: median(conn.map((c) => c.p50)),
    connP99: median(conn.map((c) => c.p99)),
    machine: load.end().text,
    up1v6: p.ipv6 ? median(up1v6) : null,
    down1v6: p.ipv6 ? median(down1v6) : null,
  };
}

async function tunsteerPath(ns: string, name: string, extra: string[]): Promise<Path> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tsE-bench-'));
  host.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const main = join(ROOT, 'dist/src/cli/main.js');
  const argv = existsSync(main) && !values.source ? [process.execPath, main] : tunsteerArgv([]);
  const gw = spawnInNs(host, ns, [...argv, 'up', '--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsb0', '--log-level', 'warn', ...extra]); // a later --mode wins
  // a minute: on this shared machine a start under load has taken over 20 s
  await waitForGateway(ns, stateDir, gw, 60_000);
  const st = JSON.parse((await nsExec(ns, [...argv, 'status', '--state-dir', stateDir, '--json'])).stdout).status;
  const dp: number = st.dataPlane?.pid ?? gw.pid!;
  return {
    name,
    ns,
    pids: () => [gw.pid!, dp].filter((x, i, a) => a.indexOf(x) === i),
    stop: async () => {
      gw.kill('SIGTERM');
      await gw.exited();
    },
  };
}

/** tproxy works on routed traffic: a LAN namespace in front of the gateway's, which forwards. */
async function lanBehind(router: string): Promise<string> {
  const lan = await createNetns(host, 'tsE-');
  await veth(lan, router, { aAddr: '198.51.100.2/24', bAddr: '198.51.100.1/24' });
  await nsExec(lan, ['ip', 'route', 'add', 'default', 'via', '198.51.100.1']);
  await nsExec(router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  return lan;
}

async function slirpPath(outer: string): Promise<Path | string> {
  if (!existsSync('/usr/bin/slirp4netns')) return 'slirp4netns is not installed';
  const inner = await createNetns(host, 'tsE-');
  const slirp = spawnInNs(host, outer, ['slirp4netns', '--configure', '--mtu=65520', '--disable-host-loopback', '--netns-type=path', `/run/netns/${inner}`, 'tap0']);
  await waitFor(async () => (await nsExec(inner, ['ip', 'route', 'show', 'default'])).stdout.includes('tap0'));
  return { name: 'slirp4netns (MTU 65520)', ns: inner, pids: () => [slirp.pid!], stop: async () => void slirp.kill('SIGTERM') };
}

/**
 * pasta attaches to a namespace it creates with a user namespace of its own;
 * started by root it drops to nobody and must be able to enter it. Where the
 * machine does not allow that, the row says why.
 */
async function pastaPath(outer: string): Promise<Path | string> {
  if (!existsSync('/usr/bin/pasta')) return 'pasta is not installed';
  const inner = await createNetns(host, 'tsE-');
  const pasta: NsChild = spawnInNs(host, outer, ['pasta', '-f', '--config-net', '--mtu', '65520', '--netns', `/run/netns/${inner}`]);
  try {
    await waitFor(async () => (await nsExec(inner, ['ip', 'route', 'show', 'default'])).stdout.includes('default'), 5000);
  } catch {
    pasta.kill('SIGTERM');
    const why =
      pasta
        .stderrText()
        .split('\n')
        .filter((l) => l && !l.includes('syslog'))
        .slice(-1)[0] ?? 'no route appeared';
    return `pasta did not start here: ${why.trim()}`;
  }
  return { name: 'pasta (MTU 65520)', ns: inner, pids: () => [pasta.pid!], stop: async () => void pasta.kill('SIGTERM') };
}

async function main() {
  const only = values.only?.split(',');
  const want = (k: string) => !only || only.includes(k);
  progress = new Progress(plannedSteps(want), { label: 'bench' });
  progress.step('setup');
  const topo = await makeTopology(host);
  await addIpv6(topo);
  await Promise.all([startIperf(host, topo), startNginx(host, topo)]);
  spawnInNs(host, topo.servers, ['iperf3', '-s', '-B', IPERF_IP6]);
  await waitForPort(topo.servers, `[${IPERF_IP6}]`, 5201);
  // the idle connections' server needs more descriptors than the default
  spawnInNs(host, topo.servers, ['sh', '-c', `ulimit -n 65536; exec ${process.execPath} --import tsx ${join(ROOT, 'test/helpers/tcp-peer.ts')} server ${PEER_IP} ${PEER_PORT}`]);
  await waitFor(async () => (await nsExec(topo.servers, ['ss', '-Hltn', `src ${PEER_IP}:${PEER_PORT}`])).stdout.trim() !== '');

  const rows: Row[] = [];
  const missing: string[] = [];
  const run = async (key: string, make: () => Promise<Path | string>) => {
    if (!want(key)) return;
    const p = await make();
    if (typeof p === 'string') {
      missing.push(p);
      progress?.skip(`${key}: `);
      progress?.print(process.stderr, `skip: ${p}\n`);
      return;
    }
    try {
      progress?.print(process.stderr, `measuring ${p.name} ...\n`);
      rows.push(await measure({ ...p, key }));
    } finally {
      await p.stop();
    }
  };
  await run('kernel', async () => ({ name: 'kernel (veth, no gateway)', ns: topo.client, pids: () => [], stop: async () => {}, ipv6: true }));
  await run('slirp', () => slirpPath(topo.client));
  await run('pasta', () => pastaPath(topo.client));
  await run('tunsteer', async () => ({ ...(await tunsteerPath(topo.client, 'tunsteer, defaults', [])), ipv6: true }));
  await run('workers1', () => tunsteerPath(topo.client, 'tunsteer, --workers 1', ['--workers', '1']));
  await run('workers', () => tunsteerPath(topo.client, `tunsteer, --workers ${CORES}`, ['--workers', String(CORES)]));
  await run('mtu1500', () => tunsteerPath(topo.client, 'tunsteer, MTU 1500', ['--mtu', '1500']));
  await run('mtu1500w1', () => tunsteerPath(topo.client, 'tunsteer, MTU 1500, --workers 1', ['--mtu', '1500', '--workers', '1']));
  await run('offload', () => tunsteerPath(topo.client, 'tunsteer, MTU 1500, --no-tun-offload', ['--mtu', '1500', '--no-tun-offload']));
  await run('best', async () => ({
    ...(await tunsteerPath(topo.client, 'tunsteer, best (--no-http-inspect, 4 MB buffers)', [
      '--no-http-inspect',
      '--tcp-rcvbuf',
      String(4 << 20),
      '--tcp-sndbuf',
      String(4 << 20),
    ])),
    ipv6: true,
  }));
  // the other inbounds: nftables REDIRECT of this namespace's own TCP, and TPROXY of a LAN's routed TCP
  await run('redirect', () => tunsteerPath(topo.client, 'tunsteer --mode redirect', ['--mode', 'redirect']));
  if (want('tproxy')) {
    const lan = await lanBehind(topo.client);
    await run('tproxy', async () => ({ ...(await tunsteerPath(topo.client, 'tunsteer --mode tproxy (LAN behind it)', ['--mode', 'tproxy'])), ns: lan }));
  }

  const table = render(rows, missing, { seconds: SECONDS, runs: RUNS, wrkSeconds: WRK_SECONDS, idle: IDLES, quick: QUICK });
  progress.finish(`${rows.length} paths measured`);
  console.log(table);
  if (values.out) writeFileSync(values.out, table + '\n' + writeCharts(rows, values.out) + '\n');
}

runBench(main, cleanup);
