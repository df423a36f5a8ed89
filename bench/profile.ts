// CPU profile of the gateway under one iperf3 stream (5 s) in namespaces of
// its own; writes a .cpuprofile to /tmp/prof (open in Chrome DevTools, or sum
// self time per function with any cpuprofile reader).
//   npm run build && node --import tsx bench/profile.ts [up|down|conn|keepalive] [gateway flags, e.g. --mtu 1500 --no-tun-offload]
// conn: wrk with a new connection per request against nginx's small response;
// keepalive: wrk with 8 kept-alive connections (the HTTP-inspecting path).
import { join } from 'node:path';
import { tempDir } from './bench-kit.js';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { IPERF_IP, NGINX_IP, ROOT, makeTopology, startIperf, startNginx, waitForGateway } from '../test/helpers/topology.js';
const tds: (() => unknown)[] = [];
const host = { teardown: (f: () => unknown) => void tds.push(f) };
const dir = process.argv[2] ?? 'up';
try {
  const topo = await makeTopology(host);
  await startIperf(host, topo);
  const sd = tempDir(host, 'tsE-prof-');
  const gw = spawnInNs(host, topo.client, [
    process.execPath,
    '--cpu-prof',
    '--cpu-prof-dir=/tmp/prof',
    join(ROOT, 'dist/src/cli/main.js'),
    'up',
    '--mode',
    'route-all',
    '--state-dir',
    sd,
    '--tun-name',
    'tsp0',
    '--log-level',
    'warn',
    ...process.argv.slice(3),
  ]);
  await waitForGateway(topo.client, sd, gw);
  if (dir === 'conn' || dir === 'keepalive') {
    await startNginx(host, topo);
    const close = dir === 'conn' ? ['-H', 'Connection: close'] : [];
    const r = await nsExec(topo.client, ['wrk', '-t', '1', '-c', dir === 'conn' ? '32' : '8', '-d', '5', ...close, '--latency', `http://${NGINX_IP}/hello`], { timeoutMs: 60000 });
    console.log(r.stdout);
  } else {
    const r = await nsExec(topo.client, ['iperf3', '-c', IPERF_IP, '-t', '5', '-J', ...(dir === 'down' ? ['-R'] : [])], { timeoutMs: 60000 });
    console.log(dir, (JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9).toFixed(2), 'Gbit/s');
  }
  gw.kill('SIGINT');
  await gw.exited();
} finally {
  for (const f of tds.reverse()) await f();
}
