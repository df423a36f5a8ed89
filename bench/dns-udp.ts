// DNS queries/s answered from the fake-IP mapping, and UDP echo datagrams/s
// relayed, each against the kernel path in the same run (issue 7).
//   kernel    the client asks the test DNS server / echo server directly
//   tunsteer  per-host mode: the gateway answers a mapped name itself;
//             route-all mode: the echo datagrams are relayed by the gateway
// Median of RUNS runs of SECONDS s; namespaces of its own, removed afterwards.
//   node --import tsx bench/dns-udp.ts [--quick]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { nsExec, spawnNodeInNs } from '../test/helpers/netns.js';
import { DNS_IP, PEER_IP, ROOT, clientResolvConf, makeTopology, startDnsPeer, startGateway, waitForGateway } from '../test/helpers/topology.js';
import { median, runBench, teardownHost, tempDir } from './bench-kit.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const SECONDS = values.quick ? 2 : 5;
const RUNS = values.quick ? 1 : 3;
const { host, cleanup } = teardownHost();

async function load(ns: string, ...a: string[]): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await nsExec(ns, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-load.ts'), ...a, String(SECONDS)], { timeoutMs: (SECONDS + 30) * 1000 });
    rates.push(JSON.parse(r.stdout).rate);
  }
  return median(rates);
}

async function main() {
  const topo = await makeTopology(host);
  await startDnsPeer(host, topo);
  const echo = spawnNodeInNs(host, topo.servers, join(ROOT, 'test/helpers/udp-peer.ts'), ['server', PEER_IP, '7001']);
  await echo.waitForLine((l) => l.includes('listening'));
  await clientResolvConf(host, topo.client, `nameserver ${DNS_IP}\n`);
  const rows: [string, number, number][] = [];
  const kDns = await load(topo.client, 'dns', DNS_IP, 'api.example.com');
  const kUdp = await load(topo.client, 'echo', PEER_IP, '7001');

  let dir = tempDir(host);
  let gw = startGateway(host, topo.client, ['--mode', 'per-host', '--host', 'api.example.com', '--state-dir', dir, '--tun-name', 'tsb1', '--log-level', 'warn']);
  await waitForGateway(topo.client, dir, gw);
  const gDns = await load(topo.client, 'dns', '198.18.0.2', 'api.example.com');
  gw.kill('SIGTERM');
  await gw.exited();
  dir = tempDir(host);
  gw = startGateway(host, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tsb2', '--log-level', 'warn']);
  await waitForGateway(topo.client, dir, gw);
  const gUdp = await load(topo.client, 'echo', PEER_IP, '7001');
  gw.kill('SIGTERM');
  await gw.exited();
  rows.push(['DNS A queries/s (mapped name; kernel: the test server)', kDns, gDns]);
  rows.push(['UDP echo datagrams/s, 64 B, 64 in flight', kUdp, gUdp]);
  console.log(`DNS and UDP, median of ${RUNS} x ${SECONDS} s; ${new Date().toISOString()}; node ${process.version}\n`);
  console.log('| measure | kernel path | tunsteer | ratio |\n| --- | ---: | ---: | ---: |');
  for (const [m, k, g] of rows) console.log(`| ${m} | ${k} | ${g} | ${(g / k).toFixed(2)}x |`);
}

runBench(main, cleanup);
