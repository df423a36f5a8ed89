// Transfer times under an impaired link, through the gateway (route-all)
// against the kernel path under the same impairment: a 50 MB download
// (curl, TLS 1.3 + HTTP/2 from nginx) and a 20 MB scp upload, 3 runs each, median seconds.
// Impairments: 2 % loss both ways on the servers' veth (both paths cross it);
// the same plus 2 % both ways on the TUN (the gateway's path only: the kernel
// path has no TUN); the faulty TUN's delay 5 ms ± 3, 2 % reordered, 1 %
// duplicated (gateway only). Every transfer is checked byte-exact.
//   node --import tsx bench/loss.ts
import { join } from 'node:path';
import { nsExec } from '../test/helpers/netns.js';
import { NGINX_IP, makeTopology, startGateway, waitForGateway } from '../test/helpers/topology.js';
import { TLS_PORT, fileSha, randomFile, startSshd, startTlsNginx } from '../test/helpers/real/servers.js';
import { clearDrops, dropArriving, vethOf } from '../test/helpers/real/impair.js';
import { median, runBench, teardownHost } from './bench-kit.js';

const { host, cleanup } = teardownHost();
const KERNEL_IP = '203.0.113.40';
const TUN = 'tsb0';
const RUNS = Number(process.env.RUNS ?? 3);

runBench(async () => {
  const topo = await makeTopology(host);
  await nsExec(topo.servers, ['ip', 'addr', 'add', `${KERNEL_IP}/32`, 'dev', 'lo']);
  const downSha = randomFile(join(topo.www, 'down.bin'), 50);
  const sshd = await startSshd(host, topo.servers, topo.tmp, [NGINX_IP, KERNEL_IP]);
  const up = join(topo.tmp, 'up.bin');
  const upSha = randomFile(up, 20);
  const cert = await startTlsNginx(host, topo.servers, topo.tmp, topo.www, [NGINX_IP, KERNEL_IP]);

  const time = async (argv: string[], check: () => boolean): Promise<number> => {
    const t0 = performance.now();
    const r = await nsExec(topo.client, argv, { allowFail: true, timeoutMs: 600_000 });
    const s = (performance.now() - t0) / 1000;
    if (r.code !== 0 || !check()) throw new Error(`${argv.join(' ')} failed or not byte-exact: ${r.stderr}`);
    return s;
  };
  const got = join(topo.tmp, 'got.bin');
  const download = (ip: string) =>
    time(['curl', '-sS', '--http2', '--cacert', cert, '--max-time', '500', '-o', got, `https://${ip}:${TLS_PORT}/down.bin`], () => fileSha(got) === downSha);
  const remote = join(sshd.dir, 'up.remote');
  const upload = (ip: string) => time(['scp', ...sshd.opts, '-q', up, `root@${ip}:${remote}`], () => fileSha(remote) === upSha);
  const measure = async (ip: string) => {
    const d: number[] = [];
    const u: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      d.push(await download(ip));
      u.push(await upload(ip));
    }
    return { down: median(d), up: median(u) };
  };

  const rows: string[] = [];
  const row = (what: string, kernel: { down: number; up: number } | null, gw: { down: number; up: number }) =>
    rows.push(`| ${what} | ${kernel ? kernel.down.toFixed(2) : '—'} | ${gw.down.toFixed(2)} | ${kernel ? kernel.up.toFixed(2) : '—'} | ${gw.up.toFixed(2)} |`);

  const startGw = async (faults: string) => {
    const dir = join(topo.tmp, `state-${rows.length}`);
    const gw = startGateway(host, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', TUN, '--log-level', 'warn', '--exclude', `${KERNEL_IP}/32`], {
      env: { ...process.env, TUNSTEER_TEST_FAULTS: faults },
    });
    await waitForGateway(topo.client, dir, gw);
    return async () => {
      gw.kill('SIGTERM');
      await gw.exited();
    };
  };

  let stop = await startGw('');
  const kernelIp = KERNEL_IP;
  const plainK = await measure(kernelIp);
  const plainG = await measure(NGINX_IP);
  row('none', plainK, plainG);
  // Loss where packets arrive, at both ends of the link (test/helpers/real/impair.ts says why).
  await dropArriving(topo.servers, [await vethOf(topo.servers)], 2);
  await dropArriving(topo.client, [await vethOf(topo.client)], 2);
  row("2 % loss both ways, servers' veth", await measure(kernelIp), await measure(NGINX_IP));
  await clearDrops(topo.client);
  await stop();
  // The client's packets to the gateway are lost in the faulty TUN's read side.
  stop = await startGw('rx:loss=0.02,seed=14');
  await dropArriving(topo.client, [await vethOf(topo.client), TUN], 2);
  row("2 % on the servers' veth and 2 % on the TUN, both ways", null, await measure(NGINX_IP));
  await clearDrops(topo.servers);
  await clearDrops(topo.client);
  await stop();
  stop = await startGw('delay=5,jitter=3,reorder=0.02,dup=0.01,seed=14');
  row('faulty TUN: delay 5 ms ± 3, 2 % reordered, 1 % duplicated, both ways', null, await measure(NGINX_IP));
  await stop();

  console.log(`| impairment | kernel path, 50 MB curl download (s) | gateway, 50 MB curl download (s) | kernel path, 20 MB scp upload (s) | gateway, 20 MB scp upload (s) |`);
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
}, cleanup);
