// Stack workers side by side with the kernel path, in one run (issue 16):
// bulk TCP with 1 and 4 streams each direction through the kernel path (veth,
// no gateway) and through tunsteer with --workers 1 and --workers N, at each
// MTU asked for; with the gateway's CPU (cores busy while it relays: all its
// threads) and how busy the whole machine was around each row.
//
//   node --import tsx bench/workers.ts                      2 s x 3 runs, workers 1 and 2, MTU 65520
//   ... --seconds 5 --runs 3 --workers 1,2,4 --mtu 65520,1500 --out FILE
//   ... --conn            connect/request/close rate instead (wrk, nginx /hello), RUNS runs back to back
//
// Builds and removes its own namespaces; traffic stays between them.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { IPERF_IP, NGINX_IP, ROOT, makeTopology, startIperf, startNginx, tunsteerArgv, waitForGateway } from '../test/helpers/topology.js';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { cpuSeconds, machineLoad, median, runBench, teardownHost } from './bench-kit.js';
import { iperfClient } from './iperf-client.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, runs: { type: 'string' }, workers: { type: 'string' }, mtu: { type: 'string' }, out: { type: 'string' }, conn: { type: 'boolean' } },
});
const SECONDS = Number(values.seconds ?? 2);
const RUNS = Number(values.runs ?? 3);
const WORKERS = (values.workers ?? '1,2').split(',').map(Number);
const MTUS = (values.mtu ?? '65520').split(',').map(Number);
const { host, cleanup } = teardownHost();

interface Row {
  path: string;
  /** Gbit/s, median of RUNS: 1 stream up, down, 4 streams up, down. */
  gbps: [number, number, number, number];
  /** The gateway's CPU while the 4-stream runs went, in cores (all its processes and threads). */
  cores4: number | null;
  /** The data plane's busiest threads in those runs, in cores each (name: the kernel's comm, e.g. node, a worker's 'node' too). */
  threads4: string;
  machine: string;
  /** --conn: connect/request/close per second, each run. */
  conns?: string;
  /** The gateway's start (spawn to `tunsteer status` answering) and its RSS then, both processes. */
  start?: string;
}

async function iperf(ns: string, streams: number, reverse: boolean): Promise<number> {
  return (await iperfClient(ns, { server: IPERF_IP, seconds: SECONDS, streams, reverse })).gbps;
}

/** CPU seconds of each thread of a process, by thread id. */
function threadCpu(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === undefined) return out;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`, (Number(f[11]) + Number(f[12])) / 100);
    }
  } catch {
    // gone
  }
  return out;
}

/** Connect/request/close per second (wrk, 16 connections, Connection: close, SECONDS each), RUNS back to back. */
async function connRate(ns: string): Promise<string> {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await nsExec(ns, ['wrk', '-t', '2', '-c', '16', '-d', `${SECONDS}s`, '-H', 'Connection: close', `http://${NGINX_IP}/hello`], { timeoutMs: (SECONDS + 30) * 1000 });
    out.push(Number(/Requests\/sec:\s*([\d.]+)/.exec(r.stdout)?.[1] ?? 0));
  }
  return out.map((x) => x.toFixed(0)).join(', ');
}

async function measure(path: string, ns: string, pids: () => number[]): Promise<Row> {
  const threads = new Map<string, number>();
  if (values.conn) {
    const load = machineLoad();
    const conns = await connRate(ns);
    const m = load.end();
    return { path, gbps: [NaN, NaN, NaN, NaN], cores4: null, threads4: '-', conns, machine: `${m.busyCores.toFixed(2)}/${m.cores} cores, load ${m.load1.toFixed(1)}` };
  }
  const load = machineLoad();
  const runs: number[][] = [[], [], [], []];
  let cpu4 = 0;
  let wall4 = 0;
  for (let i = 0; i < RUNS; i++) {
    for (const [k, streams, rev] of [
      [0, 1, false],
      [1, 1, true],
      [2, 4, false],
      [3, 4, true],
    ] as const) {
      const c0 = cpuSeconds(pids());
      const th0 = threadCpu(pids().at(-1));
      const t0 = performance.now();
      runs[k].push(await iperf(ns, streams, rev));
      if (streams === 4) {
        for (const [tid, s] of threadCpu(pids().at(-1))) threads.set(tid, (threads.get(tid) ?? 0) + s - (th0.get(tid) ?? s));
        cpu4 += cpuSeconds(pids()) - c0;
        wall4 += (performance.now() - t0) / 1000;
      }
    }
  }
  const m = load.end();
  const busiest = [...threads.values()]
    .sort((a, b) => b - a)
    .slice(0, 3)
    .map((s) => (s / wall4).toFixed(2));
  return {
    path,
    gbps: runs.map(median) as Row['gbps'],
    cores4: pids().length ? cpu4 / wall4 : null,
    threads4: busiest.join(', ') || '-',
    machine: `${m.busyCores.toFixed(2)}/${m.cores} cores, load ${m.load1.toFixed(1)}`,
  };
}

async function gateway(ns: string, workers: number, mtu: number): Promise<{ pids: () => number[]; stop: () => Promise<void>; startS: number; rssMb: number }> {
  const t0 = performance.now();
  const stateDir = mkdtempSync(join(tmpdir(), 'tsE-benchw-'));
  host.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  // compiled when built (npm run build): a start from source pays tsx in every worker
  const cli = (args: string[]) => (existsSync(join(ROOT, 'dist/src/cli/main.js')) ? [process.execPath, join(ROOT, 'dist/src/cli/main.js'), ...args] : tunsteerArgv(args));
  const gw = spawnInNs(
    host,
    ns,
    cli(['up', '--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsb0', '--log-level', 'warn', '--workers', String(workers), '--mtu', String(mtu)]),
  );
  await waitForGateway(ns, stateDir, gw, 60_000);
  const st = JSON.parse((await nsExec(ns, cli(['status', '--state-dir', stateDir, '--json']))).stdout).status;
  const dp: number = st.dataPlane?.pid ?? gw.pid!;
  const startS = (performance.now() - t0) / 1000;
  const rssMb = [gw.pid!, dp]
    .filter((x, i, a) => a.indexOf(x) === i)
    .reduce((n, pid) => n + Number(/^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024, 0);
  return {
    startS,
    rssMb,
    pids: () => [gw.pid!, dp].filter((x, i, a) => a.indexOf(x) === i),
    stop: async () => {
      gw.kill('SIGTERM');
      await gw.exited();
    },
  };
}

async function main() {
  const topo = await makeTopology(host);
  await Promise.all([startIperf(host, topo), startNginx(host, topo)]);
  const rows: Row[] = [];
  process.stderr.write('kernel path ...\n');
  rows.push(await measure('kernel (veth, no gateway)', topo.client, () => []));
  for (const mtu of MTUS) {
    for (const w of WORKERS) {
      process.stderr.write(`tunsteer --workers ${w} --mtu ${mtu} ...\n`);
      const g = await gateway(topo.client, w, mtu);
      try {
        rows.push({ ...(await measure(`tunsteer --workers ${w}, MTU ${mtu}`, topo.client, g.pids)), start: `${g.startS.toFixed(1)} s, ${g.rssMb.toFixed(0)} MB` });
      } finally {
        await g.stop();
      }
    }
  }
  const k = rows[0].gbps;
  const cell = (v: number, i: number, r: Row) => (r === rows[0] ? v.toFixed(2) : `${v.toFixed(2)} (${(v / k[i]).toFixed(2)}x)`);
  if (values.conn) {
    const t = [
      '| path | connect/request/close per s, runs back to back | start, RSS idle | machine |',
      '| --- | --- | --- | --- |',
      ...rows.map((r) => `| ${r.path} | ${r.conns} | ${r.start ?? '-'} | ${r.machine} |`),
    ].join('\n');
    console.log(t);
    if (values.out) writeFileSync(values.out, t + '\n');
    return;
  }
  const table = [
    `${new Date().toISOString()}; node ${process.version}; iperf3 ${SECONDS} s x ${RUNS} (median); Gbit/s (ratio to the kernel path)`,
    '',
    '| path | 1 stream up | 1 stream down | 4 streams up | 4 streams down | gateway CPU, 4 streams (cores) | busiest data-plane threads (cores) | start, RSS idle | machine during the row |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.path} | ${r.gbps.map((v, i) => cell(v, i, r)).join(' | ')} | ${r.cores4 === null ? '-' : r.cores4.toFixed(2)} | ${r.threads4} | ${r.start ?? '-'} | ${r.machine} |`,
    ),
  ].join('\n');
  console.log(table);
  if (values.out) writeFileSync(values.out, table + '\n');
}

runBench(main, cleanup);
