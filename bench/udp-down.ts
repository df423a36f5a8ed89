// UDP down through the relay at the highest rate a sender offers (issue 16
// item 1, USO on write: is it worth writing same-size replies to the TUN as
// one UDP GSO packet?). A python blaster in the servers namespace answers a
// client's GO with SIZE-byte datagrams for SECONDS (bench/udp-blast.py); the
// client counts them. Paths in one run: the kernel (no gateway), then a
// route-all gateway at MTU 1500 and 65520, offloads off and on. Per path the
// median of RUNS: datagrams/s sent and delivered, loss, and the gateway's CPU
// per delivered datagram (both processes), and the UDP GSO packets the
// gateway wrote (USO on write). --mtus and --offloads pick gateway rows.
//   node --import tsx bench/udp-down.ts [--size 1200] [--seconds 3] [--runs 3] [--mtus 1500,65520] [--offloads off,on]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { PEER_IP, ROOT, makeTopology, startGateway, tunsteerArgv, waitForGateway } from '../test/helpers/topology.js';
import { cpuSeconds, machineLoad, median, runBench, teardownHost, tempDir } from './bench-kit.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1200' },
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    mtus: { type: 'string', default: '1500,65520' },
    offloads: { type: 'string', default: 'off,on' },
  },
});
const SIZE = Math.min(65000, Math.max(1, Number(values.size)));
const SECONDS = Math.min(10, Math.max(1, Number(values.seconds)));
const RUNS = Math.min(9, Math.max(1, Number(values.runs)));
const PORT = 7002;
const BLAST = join(ROOT, 'bench/udp-blast.py');
const { host, cleanup } = teardownHost();

interface Row {
  path: string;
  sentPerS: number;
  gotPerS: number;
  loss: number;
  usPerDatagram: number | null;
  /** The gateway's UDP GSO packets written (USO on write) and the datagrams in them, over all runs of the path. */
  uso?: { packets: number; datagrams: number };
}

async function blast(ns: string, pids: number[]): Promise<Row & { ok: boolean }> {
  const c0 = cpuSeconds(pids);
  const r = await nsExec(ns, ['python3', BLAST, 'sink', PEER_IP, String(PORT), String(SIZE), String(SECONDS)], { timeoutMs: (SECONDS + 40) * 1000 });
  const cpu = cpuSeconds(pids) - c0;
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { recv: number; sent: number | null };
  const sent = j.sent ?? 0;
  return {
    path: '',
    ok: j.sent !== null,
    sentPerS: sent / SECONDS,
    gotPerS: j.recv / SECONDS,
    loss: sent > 0 ? 1 - j.recv / sent : 1,
    usPerDatagram: pids.length && j.recv ? (cpu / j.recv) * 1e6 : null,
  };
}

async function path(name: string, ns: string, pids: number[]): Promise<Row> {
  const rows: Row[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await blast(ns, pids);
    if (!r.ok) throw new Error(`${name}: the blaster's END never arrived`);
    rows.push(r);
  }
  const mid = median(rows.map((r) => r.gotPerS));
  const m = rows.find((r) => r.gotPerS === mid)!;
  return { ...m, path: name };
}

async function main() {
  const load = machineLoad();
  const topo = await makeTopology(host);
  const server = spawnInNs(host, topo.servers, ['python3', BLAST, 'server', PEER_IP, String(PORT)]);
  await server.waitForLine((l) => l.includes('listening'));
  const rows: Row[] = [await path('kernel path', topo.client, [])];
  let n = 0;
  for (const mtu of values.mtus.split(',').map(Number))
    for (const offload of values.offloads.split(',').map((o) => o === 'on')) {
      const dir = tempDir(host);
      const args = ['--mode', 'route-all', '--state-dir', dir, '--tun-name', `tsud${n++}`, '--mtu', String(mtu), '--log-level', 'warn', ...(offload ? [] : ['--no-tun-offload'])];
      const gw = startGateway(host, topo.client, args);
      await waitForGateway(topo.client, dir, gw, 90_000);
      const st = JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', dir, '--json']))).stdout).status;
      const pids = [gw.pid!, st.dataPlane?.pid ?? gw.pid!].filter((x, i, a) => a.indexOf(x) === i);
      const row = await path(`tunsteer MTU ${mtu}, offloads ${offload ? 'on' : 'off'}`, topo.client, pids);
      await new Promise((res) => setTimeout(res, 1200)); // the next status publish
      const after = JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', dir, '--json']))).stdout).status;
      row.uso = { packets: after.counters.udpUsoPackets ?? 0, datagrams: after.counters.udpUsoDatagrams ?? 0 };
      rows.push(row);
      gw.kill('SIGTERM');
      await gw.exited();
    }
  const k = rows[0].gotPerS;
  console.log(`UDP down, ${SIZE}-byte datagrams, ${SECONDS} s blasts, median of ${RUNS}; ${new Date().toISOString()}; node ${process.version}; ${load.end().text}\n`);
  console.log(
    '| path | sent/s | delivered/s | loss | vs kernel | gateway CPU µs per datagram | UDP GSO packets written (datagrams in them), all runs |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of rows)
    console.log(
      `| ${r.path} | ${Math.round(r.sentPerS)} | ${Math.round(r.gotPerS)} | ${(r.loss * 100).toFixed(1)} % | ${(r.gotPerS / k).toFixed(2)}x | ${r.usPerDatagram === null ? '-' : r.usPerDatagram.toFixed(1)} | ${r.uso ? `${r.uso.packets} (${r.uso.datagrams})` : '-'} |`,
    );
}

runBench(main, cleanup);
