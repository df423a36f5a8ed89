import { join } from 'node:path';
import { tempDir } from './bench-kit.js';
import { nsExec } from '../test/helpers/netns.js';
import { NGINX_IP, PEER_IP, PEER_PORT, ROOT, makeTopology, startGateway, startNginx, startPeer, waitForGateway } from '../test/helpers/topology.js';
const tds: (() => unknown)[] = [];
const host = { teardown: (f: () => unknown) => void tds.push(f) };
try {
  const topo = await makeTopology(host);
  await startNginx(host, topo);
  await nsExec(topo.servers, ['sh', '-c', `head -c 100M /dev/urandom > ${topo.www}/100m.bin`]);
  const sd = tempDir(host, 'tsE-fd-');
  const gw = startGateway(host, topo.client, ['--mode', 'route-all', '--state-dir', sd, '--tun-name', 'tsq0', '--log-level', 'warn', '--mtu', process.argv[3] ?? '1500'], {
    env: { ...process.env, TUNSTEER_TEST_FAULTS: process.argv[2] },
  });
  await waitForGateway(topo.client, sd, gw);
  if (process.argv[4] === 'upload') {
    await startPeer(host, topo);
    await nsExec(topo.client, ['sh', '-c', `head -c 100M /dev/urandom > ${topo.tmp}/up.bin`]);
    for (let i = 0; i < 5; i++) {
      const u = await nsExec(
        topo.client,
        [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/tcp-peer.ts'), 'upload', PEER_IP, String(PEER_PORT), `${topo.tmp}/up.bin`],
        { timeoutMs: 160_000, allowFail: true },
      );
      console.log('upload', i, u.stdout.trim());
    }
    for (const l of gw.stdoutLines()) console.log(l);
  }
  const t0 = Date.now();
  const p = nsExec(topo.client, ['sh', '-c', `curl -sS --max-time 20 -o /dev/null -w '%{size_download} %{time_total}' http://${NGINX_IP}/100m.bin`], {
    timeoutMs: 60_000,
    allowFail: true,
  });
  const st = JSON.parse((await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'status', '--state-dir', sd, '--json'])).stdout).status;
  setTimeout(() => process.kill(st.dataPlane.pid, 'SIGUSR2'), 15_000);
  const r = await p;
  console.log('curl:', r.stdout, r.stderr, Date.now() - t0, 'ms');
  await new Promise((r) => setTimeout(r, 500));
  for (const l of gw.stdoutLines().filter((l) => l.includes('tcp debug'))) console.log(l);
  gw.kill('SIGTERM');
  await gw.exited();
} finally {
  for (const f of tds.reverse()) await f();
}
