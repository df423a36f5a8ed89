// Issue 14: "once in eleven runs of a short conformance test, a fresh SYN to an
// echo server behind an otherwise idle gateway got no SYN-ACK within 3 s".
// Fresh connections to a socat echo server through an idle route-all gateway,
// one at a time with idle gaps (0 to GAP_MS), bounded by COUNT and MAX_S;
// tshark records the TUN. Prints every connect slower than 500 ms (a SYN the
// client had to send again) with the capture's lines for its port.
// ROUNDS=N starts a fresh gateway N times and connects as soon as `tunsteer
// status` says it is up (the first SYN of a new gateway).
//   COUNT=400 GAP_MS=3000 MAX_S=600 ROUNDS=1 node --import tsx bench/syn-probe.ts
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { NGINX_IP6, addIpv6, makeTopology, startGateway, waitForGateway, waitForPort } from '../test/helpers/topology.js';
import { runBench, teardownHost } from './bench-kit.js';

const { host, cleanup } = teardownHost();
const COUNT = Number(process.env.COUNT ?? 400);
const GAP_MS = Number(process.env.GAP_MS ?? 3000);
const MAX_S = Number(process.env.MAX_S ?? 600);
const ECHO = '203.0.113.12';
const ROUNDS = Number(process.env.ROUNDS ?? 1);
/** V6=1: the echo server on an IPv6 address, the client over IPv6 */
const V6 = process.env.V6 === '1';

const client = `
const net = require('net');
const [count, gap, maxS, host] = process.argv.slice(1).map((v, i) => (i < 3 ? Number(v) : v));
const until = Date.now() + maxS * 1000;
(async () => {
  for (let i = 0; i < count && Date.now() < until; i++) {
    await new Promise((r) => setTimeout(r, Math.random() * gap));
    const t0 = Date.now();
    const r = await new Promise((resolve) => {
      const s = net.connect({ host, port: 7000 });
      s.setTimeout(10000, () => { s.destroy(); resolve({ err: 'timeout' }); });
      s.on('connect', () => {
        const ms = Date.now() - t0;
        const port = s.localPort;
        s.end('ping');
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('end', () => { s.destroy(); resolve({ ms, port, echo: got === 'ping' }); });
      });
      s.on('error', (e) => resolve({ err: e.code }));
    });
    console.log(JSON.stringify({ i, at: new Date(t0).toISOString(), ...r }));
  }
})();
`;

runBench(async () => {
  const topo = await makeTopology(host);
  if (V6) await addIpv6(topo);
  const echo = V6 ? NGINX_IP6 : ECHO;
  spawnInNs(host, topo.servers, ['socat', V6 ? `TCP6-LISTEN:7000,bind=[${echo}],fork,reuseaddr,backlog=128` : `TCP4-LISTEN:7000,bind=${echo},fork,reuseaddr,backlog=128`, 'PIPE']);
  await nsExec(topo.servers, ['ip', 'addr', 'add', `${ECHO}/32`, 'dev', 'lo'], { allowFail: true });
  await waitForPort(topo.servers, V6 ? `[${echo}]` : echo, 7000);
  const pcap = join(topo.tmp, 'tun.pcap');
  const rows: { err?: string; ms?: number; port?: number; echo?: boolean; round?: number }[] = [];
  let last = '';
  for (let round = 0; round < ROUNDS; round++) {
    const dir = join(topo.tmp, `state-${round}`);
    const gw = startGateway(host, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tsp0']);
    await waitForGateway(topo.client, dir, gw, 90_000); // a loaded 2-core VM
    // tshark attaches after the first connects of a fresh gateway: those are timed, not captured
    const cap = ROUNDS === 1 ? spawnInNs(host, topo.client, ['tshark', '-q', '-i', 'tsp0', '-w', pcap, '-f', 'tcp port 7000']) : null;
    if (cap) await new Promise((r) => setTimeout(r, 2000));
    const r = await nsExec(topo.client, [process.execPath, '-e', client, String(COUNT), String(GAP_MS), String(MAX_S), echo], { timeoutMs: (MAX_S + 60) * 1000 });
    if (cap) {
      cap.kill('SIGINT');
      await cap.exited();
    }
    for (const l of r.stdout.trim().split('\n')) rows.push({ ...JSON.parse(l), round });
    const st = await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(import.meta.dirname, '../src/main.ts'), 'status', '--state-dir', dir, '--json'], {
      allowFail: true,
    });
    const drops = JSON.parse(st.stdout || '{}').status?.drops ?? {};
    last = JSON.stringify(Object.fromEntries(Object.entries(drops).filter(([, v]) => v !== 0)));
    gw.kill('SIGTERM');
    await gw.exited();
  }
  const slow = rows.filter((x) => x.err || (x.ms ?? 0) > 500 || !x.echo);
  const ms = rows
    .filter((x) => !x.err)
    .map((x) => x.ms ?? 0)
    .sort((a, b) => a - b);
  console.log(`${rows.length} connects in ${ROUNDS} gateway(s); median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms[ms.length - 1]} ms; slow or failed: ${slow.length}`);
  for (const s of slow) {
    console.log(JSON.stringify(s));
    if (s.port && ROUNDS === 1) {
      const d = await nsExec(topo.client, ['tshark', '-r', pcap, '-t', 'ad', '-Y', `tcp.port == ${s.port}`], { allowFail: true });
      console.log(d.stdout);
    }
  }
  console.log('drops other than 0 (last gateway):', last);
}, cleanup);
