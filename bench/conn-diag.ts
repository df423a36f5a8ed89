// Ad-hoc: where do new-connection stalls come from? wrk with a new connection
// per request through the gateway, then the client's TCP counters and the
// gateway's drop counters.
import { join } from 'node:path';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { nsExec } from '../test/helpers/netns.js';
import { NGINX_IP, makeTopology, startGateway, startNginx, tunsteerArgv, waitForGateway } from '../test/helpers/topology.js';
const tds: (() => unknown)[] = [];
const cpuOf = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};
const host = { teardown: (f: () => unknown) => void tds.push(f) };
try {
  const topo = await makeTopology(host);
  await startNginx(host, topo);
  const sd = mkdtempSync(join(tmpdir(), 'tsE-diag-'));
  host.teardown(() => rmSync(sd, { recursive: true, force: true }));
  const gw = startGateway(host, topo.client, ['--mode', 'route-all', '--state-dir', sd, '--tun-name', 'tsd0', '--log-level', 'warn', ...process.argv.slice(2)]);
  await waitForGateway(topo.client, sd, gw);
  for (let i = 0; i < 3; i++) {
    await nsExec(topo.client, ['nstat', '-n']);
    const cpu0 = cpuOf(gw.pid!);
    const r = await nsExec(topo.client, ['wrk', '-t', '2', '-c', '16', '-d', '5', '-H', 'Connection: close', '--latency', `http://${NGINX_IP}/hello`], { timeoutMs: 60000 });
    console.log('gateway cpu s:', (cpuOf(gw.pid!) - cpu0).toFixed(2));
    const cs = await nsExec(topo.client, ['sh', '-c', "ss -tan | awk '{print $1}' | sort | uniq -c"]);
    console.log('client ns sockets:', cs.stdout.replace(/\n/g, ' '));
    console.log(
      r.stdout
        .split('\n')
        .filter((l) => /Requests\/sec|99%|50%|Socket errors/.test(l))
        .join(' | '),
    );
    const n = await nsExec(topo.client, ['nstat', '-z']);
    console.log(
      n.stdout
        .split('\n')
        .filter((l) => /SynRetrans|RetransSegs|TCPTimeouts|OutRsts|AttemptFails|EstabResets|TCPAbortOn|ListenDrops/.test(l) && !/\s0\s/.test(l))
        .join('\n'),
    );
    const s = JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', sd, '--json']))).stdout);
    console.log(JSON.stringify(Object.fromEntries(Object.entries(s.status.counters).filter(([k]) => k.startsWith('tcp')))));
    const ss = await nsExec(topo.servers, ['sh', '-c', "ss -tan | awk '{print $1}' | sort | uniq -c"]);
    console.log('servers ns sockets:', ss.stdout.replace(/\n/g, ' '));
  }
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const s = JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', sd, '--json']))).stdout);
    console.log('after', i + 1, 's:', s.status.counters.tcp_state_time_wait ?? 0, s.status.updatedAt);
  }
  gw.kill('SIGTERM');
  await gw.exited();
} finally {
  for (const f of tds.reverse()) await f();
}
