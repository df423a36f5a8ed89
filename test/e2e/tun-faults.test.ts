// Faults on the TUN path: loss, reordering, duplication, delay with jitter,
// in both directions at once (client → gateway on the packets the gateway
// reads, gateway → client on those it writes). This machine's kernel has no
// sch_netem (tc says "Specified qdisc kind is unknown"), so the faults are
// injected by the device layer's test-only FaultyTun (TUNSTEER_TEST_FAULTS).
// Each profile: a 100 MB download and a 100 MB upload, sha256 equal on both
// ends, each within 120 s (the bound this test states).
import t from 'tap';
import { join } from 'node:path';
import { nsExec } from '../helpers/netns.js';
import { NGINX_IP, PEER_IP, PEER_PORT, ROOT, makeTopology, startGateway, startNginx, startPeer, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(1_500_000);
const BOUND_MS = 120_000;
// [name, faults, MTU]: the default MTU (65520) moves 64 KiB segments, so MTU
// 1500 runs too, with 40 times the packets and so the faults.
const PROFILES: [string, string, number][] = [
  ['loss 2 %', 'loss=0.02,seed=11', 65520],
  ['reordering 5 %', 'reorder=0.05,seed=12', 65520],
  ['duplication 2 %', 'dup=0.02,seed=13', 65520],
  ['delay 5 ms, jitter 5 ms', 'delay=5,jitter=5,seed=14', 65520],
  ['all at once', 'loss=0.01,reorder=0.03,dup=0.01,delay=2,jitter=3,seed=15', 65520],
  ['loss 2 %, MTU 1500', 'loss=0.02,seed=21', 1500],
  ['reordering 5 %, MTU 1500', 'reorder=0.05,seed=22', 1500],
  ['duplication 2 %, MTU 1500', 'dup=0.02,seed=23', 1500],
  ['delay 5 ms, jitter 5 ms, MTU 1500', 'delay=5,jitter=5,seed=24', 1500],
];

const topo = await makeTopology(t);
await Promise.all([startNginx(t, topo), startPeer(t, topo)]);
await nsExec(topo.servers, ['sh', '-c', `head -c 100M /dev/urandom > ${topo.www}/100m.bin`]);
await nsExec(topo.client, ['sh', '-c', `head -c 100M /dev/urandom > ${topo.tmp}/up.bin`]);
const down = (await nsExec(topo.servers, ['sha256sum', `${topo.www}/100m.bin`])).stdout.split(' ')[0];

let n = 0;
const only = process.env.FAULTS_ONLY;
for (const [name, faults, mtu] of PROFILES.filter(([n]) => !only || n === only)) {
  t.test(name, async (t) => {
    const stateDir = join(topo.tmp, `state${n}`);
    const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', `tsf${n++}`, '--log-level', 'warn', '--mtu', String(mtu)], {
      env: { ...process.env, TUNSTEER_TEST_FAULTS: faults },
    });
    await waitForGateway(topo.client, stateDir, gw);
    let t0 = Date.now();
    const d = await nsExec(topo.client, ['sh', '-c', `curl -sS --max-time 150 http://${NGINX_IP}/100m.bin | sha256sum`], { timeoutMs: 160_000, allowFail: true });
    const dMs = Date.now() - t0;
    t.equal(d.stdout.split(' ')[0], down, `download byte-exact (${dMs} ms) ${d.stderr}`);
    t.ok(dMs < BOUND_MS, `download within ${BOUND_MS} ms: ${dMs} ms`);
    t0 = Date.now();
    const u = await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/tcp-peer.ts'), 'upload', PEER_IP, String(PEER_PORT), `${topo.tmp}/up.bin`], {
      timeoutMs: 160_000,
      allowFail: true,
    });
    const uMs = Date.now() - t0;
    const up = JSON.parse(u.stdout.trim().split('\n').pop() || '{}');
    t.equal(up.ok, true, `upload byte-exact (${uMs} ms) ${u.stdout} ${u.stderr}`);
    t.ok(uMs < BOUND_MS, `upload within ${BOUND_MS} ms: ${uMs} ms`);
    const st = JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status.counters;
    const injected = Object.entries(st).filter(([k, v]) => k.startsWith('fault_') && (v as number) > 0);
    t.ok(injected.length > 0, `faults were injected: ${JSON.stringify(Object.fromEntries(injected))}`);
    t.comment(`${name}: download ${dMs} ms, upload ${uMs} ms; ${JSON.stringify(Object.fromEntries(injected))}; retransmits ${st.retransmits}`);
    gw.kill('SIGTERM');
    await gw.exited();
  });
}
