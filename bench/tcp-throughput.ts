// Single-stream TCP throughput, side by side in one run:
//   kernel    iperf3 client → veth → server (no gateway)
//   tunsteer  the client namespace in route-all mode through the gateway
//   slirp4netns (MTU 65520), when installed: the same job done by slirp4netns
// Each path: upload and download, RUNS runs of SECONDS s, median reported,
// with ratios against the kernel path and slirp4netns. Builds and removes its
// own namespaces; traffic stays between them.
//
//   node --import tsx bench/tcp-throughput.ts [--quick] [--seconds N] [--runs N] [--mtu N]
import { parseArgs } from 'node:util';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IPERF_IP, ROOT, makeTopology, startIperf, waitForGateway } from '../test/helpers/topology.js';
import { createNetns, nsExec, spawnInNs } from '../test/helpers/netns.js';
import { cpuSeconds, median, runBench, teardownHost, waitFor } from './bench-kit.js';
import { iperfClient } from './iperf-client.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean' }, seconds: { type: 'string' }, runs: { type: 'string' }, mtu: { type: 'string' } },
});
const SECONDS = Number(values.seconds ?? (values.quick ? 2 : 10));
const RUNS = Number(values.runs ?? (values.quick ? 1 : 3));
const MTU = Number(values.mtu ?? 65520);

const { host, cleanup } = teardownHost();

async function iperf(ns: string, reverse: boolean): Promise<number> {
  return (await iperfClient(ns, { server: IPERF_IP, seconds: SECONDS, reverse })).gbps;
}

async function measure(ns: string): Promise<{ up: number; down: number }> {
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    up.push(await iperf(ns, false));
    down.push(await iperf(ns, true));
  }
  return { up: median(up), down: median(down) };
}

async function main() {
  const rows: { path: string; up: number; down: number; note: string }[] = [];
  const topo = await makeTopology(host);
  await startIperf(host, topo);

  rows.push({ path: 'kernel (veth, no gateway)', ...(await measure(topo.client)), note: '' });

  // tunsteer: the client namespace steered by the gateway, once per TUN backend.
  for (const backend of ['native', 'tuntap2']) {
    const stateDir = mkdtempSync(join(tmpdir(), 'tsE-bench-'));
    host.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
    const gw = spawnInNs(host, topo.client, [
      process.execPath,
      join(ROOT, 'dist/src/cli/main.js'),
      'up',
      '--mode',
      'route-all',
      '--state-dir',
      stateDir,
      '--tun-name',
      'tsb0',
      '--mtu',
      String(MTU),
      '--log-level',
      'warn',
      '--tun-backend',
      backend,
    ]);
    await waitForGateway(topo.client, stateDir, gw);
    // the data plane is the supervisor's child (tuntap2 runs in-process)
    const st = JSON.parse((await nsExec(topo.client, [process.execPath, join(ROOT, 'dist/src/cli/main.js'), 'status', '--state-dir', stateDir, '--json'])).stdout).status;
    const pid: number = st.dataPlane?.pid ?? gw.pid!;
    const cpu0 = cpuSeconds([pid]);
    const t = await measure(topo.client);
    const cpu = cpuSeconds([pid]) - cpu0;
    rows.push({ path: `tunsteer ${backend} TUN I/O (MTU ${MTU})`, ...t, note: `gateway CPU ${cpu.toFixed(1)} s` });
    gw.kill('SIGTERM');
    await gw.exited();
  }

  // slirp4netns: a namespace of its own whose uplink is slirp4netns running in the client namespace.
  if (existsSync('/usr/bin/slirp4netns')) {
    const inner = await createNetns(host, 'tsE-');
    const slirp = spawnInNs(host, topo.client, [
      'slirp4netns',
      '--configure',
      `--mtu=${Math.min(MTU, 65520)}`,
      '--disable-host-loopback',
      '--netns-type=path',
      `/run/netns/${inner}`,
      'tap0',
    ]);
    await waitFor(async () => (await nsExec(inner, ['ip', 'route', 'show', 'default'])).stdout.includes('tap0'));
    const s = await measure(inner);
    rows.push({ path: `slirp4netns (MTU ${Math.min(MTU, 65520)})`, ...s, note: '' });
    slirp.kill('SIGTERM');
  }

  const kernel = rows[0];
  const slirp = rows.find((r) => r.path.startsWith('slirp4netns'));
  const f = (x: number) => x.toFixed(2).padStart(6);
  const ratio = (a: number, b?: number) => (b ? `${(a / b).toFixed(2)}x` : '-').padStart(6);
  const lines = [
    `single-stream TCP, iperf3 ${SECONDS} s, median of ${RUNS}, Gbit/s; ${new Date().toISOString()}; node ${process.version}`,
    '| path | upload | download | up vs kernel | down vs kernel | up vs slirp4netns | down vs slirp4netns | note |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.path} | ${f(r.up)} | ${f(r.down)} | ${ratio(r.up, kernel.up)} | ${ratio(r.down, kernel.down)} | ${ratio(r.up, slirp?.up)} | ${ratio(r.down, slirp?.down)} | ${r.note} |`,
    ),
  ];
  console.log(lines.join('\n'));
}

runBench(main, cleanup);
