// Ad-hoc: does bulk TCP through the gateway slow its later connection rate?
// wrk with a new connection per request, then iperf3 4 streams each way, then
// wrk again, on one gateway; the status counters that moved in between.
//   node --import tsx bench/conn-after-bulk.ts [gateway flags, e.g. --workers 2]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nsExec } from '../test/helpers/netns.js';
import { IPERF_IP, NGINX_IP, makeTopology, startGateway, startIperf, startNginx, tunsteerArgv, waitForGateway } from '../test/helpers/topology.js';
import { iperfClient } from './iperf-client.js';

const tds: (() => unknown)[] = [];
const host = { teardown: (f: () => unknown) => void tds.push(f) };
try {
  const topo = await makeTopology(host);
  await startNginx(host, topo);
  await startIperf(host, topo);
  const sd = mkdtempSync(join(tmpdir(), 'tsE-cab-'));
  host.teardown(() => rmSync(sd, { recursive: true, force: true }));
  const gw = startGateway(host, topo.client, ['--mode', 'route-all', '--state-dir', sd, '--tun-name', 'tsc0', '--log-level', 'warn', ...process.argv.slice(2)]);
  await waitForGateway(topo.client, sd, gw);
  const status = async () =>
    JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', sd, '--json']))).stdout).status as {
      counters: Record<string, number>;
      drops: Record<string, number>;
    };
  const wrk = async (label: string) => {
    const r = await nsExec(topo.client, ['wrk', '-t', '2', '-c', '16', '-d', '3', '-H', 'Connection: close', '--latency', `http://${NGINX_IP}/hello`], { timeoutMs: 60000 });
    console.log(
      label,
      r.stdout
        .split('\n')
        .filter((l) => /Requests\/sec|99%|50%|Socket errors/.test(l))
        .map((l) => l.trim())
        .join(' | '),
    );
  };
  await wrk('before bulk:');
  const s0 = await status();
  for (const reverse of [false, true])
    console.log('iperf3 4 streams', reverse ? 'down' : 'up', (await iperfClient(topo.client, { server: IPERF_IP, seconds: 3, streams: 4, reverse })).gbps.toFixed(2), 'Gbit/s');
  const s1 = await status();
  // what the gateway still holds after iperf3 has ended (every iperf3 socket is closed by then)
  for (const wait of [0, 2000, 5000]) {
    await new Promise((r) => setTimeout(r, wait));
    const c = (await status()).counters;
    console.log(`held after iperf3 (+${wait} ms):`, JSON.stringify({ connections: c.connections, tcpBuffered: c.tcpBuffered, proxy_active: c.proxy_active }));
  }
  await wrk('after bulk:');
  await new Promise((r) => setTimeout(r, 2000));
  await wrk('after bulk, 2 s later:');
  const s2 = await status();
  const moved = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(Object.entries(b).filter(([k, v]) => v !== (a[k] ?? 0) && !/^mem_|bytes|packets|segments|timer|^tcp_state/.test(k)));
  console.log('during bulk:', JSON.stringify(moved(s0.counters, s1.counters)), JSON.stringify(moved(s0.drops, s1.drops)));
  console.log('after bulk, the two wrk runs:', JSON.stringify(moved(s1.counters, s2.counters)), JSON.stringify(moved(s1.drops, s2.drops)));
  gw.kill('SIGTERM');
  await gw.exited();
} finally {
  for (const f of tds.reverse()) await f();
}
