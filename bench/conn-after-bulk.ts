// Ad-hoc: does bulk TCP through the gateway slow its later connection rate?
// wrk with a new connection per request, then iperf3 4 streams each way, then
// wrk again, on one gateway; the status counters that moved in between.
// IDLE=N first holds N idle connections through the gateway and closes them
// (as the suite's idle step does before its bulk and wrk steps), then wrk.
//   [IDLE=10000] node --import tsx bench/conn-after-bulk.ts [gateway flags, e.g. --workers 2]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { RAISE_FDS, holdConns, prepareForConns } from './idle-conns.js';
import { IPERF_IP, NGINX_IP, PEER_IP, PEER_PORT, ROOT, makeTopology, startGateway, startIperf, startNginx, tunsteerArgv, waitForGateway } from '../test/helpers/topology.js';
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
    const r = await nsExec(topo.client, ['wrk', '-t', '2', '-c', '16', '-d', process.env.WRK_SECONDS ?? '3', '-H', 'Connection: close', '--latency', `http://${NGINX_IP}/hello`], {
      timeoutMs: 60000,
    });
    console.log(
      label,
      r.stdout
        .split('\n')
        .filter((l) => /Requests\/sec|99%|50%|Socket errors/.test(l))
        .map((l) => l.trim())
        .join(' | '),
    );
  };
  await wrk('fresh gateway:');
  const idle = Number(process.env.IDLE ?? 0);
  if (idle > 0) {
    spawnInNs(host, topo.servers, ['sh', '-c', `${RAISE_FDS}; exec ${process.execPath} --import tsx ${join(ROOT, 'test/helpers/tcp-peer.ts')} server ${PEER_IP} ${PEER_PORT}`]);
    const ports = await prepareForConns(host, topo, idle);
    await new Promise((r) => setTimeout(r, 1000));
    const { held, release } = await holdConns(host, topo.client, PEER_IP, ports, idle);
    await release();
    await new Promise((r) => setTimeout(r, 3000));
    console.log(`held ${held} idle connections, then closed them`);
    for (let i = 1; i <= Number(process.env.WRK_RUNS ?? 1); i++) {
      await wrk(`after the idle connections, run ${i}:`);
      // the client namespace's sockets by state: the gateway's upstream sockets live here too
      const ss = (await nsExec(topo.client, ['ss', '-Htan'])).stdout.split('\n').filter(Boolean);
      const by: Record<string, number> = {};
      for (const l of ss) by[l.split(/\s+/)[0]] = (by[l.split(/\s+/)[0]] ?? 0) + 1;
      console.log('  client namespace sockets:', JSON.stringify(by));
    }
  }
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
