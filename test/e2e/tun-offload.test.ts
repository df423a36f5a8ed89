// --tun-offload (IFF_VNET_HDR): byte-exact transfers both ways through the
// gateway at MTU 1500 and 65520, with offloads on and off, and `tunsteer
// status` saying which are on. With them on, the local kernel hands the
// gateway coalesced segments over the MTU whose checksums it vouches for (the
// gateway then reads fewer, larger packets); without them nothing changes.
import t from 'tap';
import { join } from 'node:path';
import { nsExec } from '../helpers/netns.js';
import { NGINX_IP, PEER_IP, PEER_PORT, ROOT, makeTopology, startGateway, startNginx, startPeer, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(600_000);

const topo = await makeTopology(t);
await Promise.all([startNginx(t, topo), startPeer(t, topo)]);
await nsExec(topo.servers, ['sh', '-c', `head -c 20M /dev/urandom > ${topo.www}/20m.bin`]);
await nsExec(topo.client, ['sh', '-c', `head -c 20M /dev/urandom > ${topo.tmp}/up.bin`]);
const shaOf = async (ns: string, file: string) => (await nsExec(ns, ['sha256sum', file])).stdout.split(' ')[0];
const down = await shaOf(topo.servers, `${topo.www}/20m.bin`);
const up = await shaOf(topo.client, `${topo.tmp}/up.bin`);

let n = 0;
for (const mtu of [1500, 65520]) {
  for (const offload of [false, true]) {
    t.test(`MTU ${mtu}, offloads ${offload ? 'on' : 'off'}: 20 MB down and up byte-exact`, async (t) => {
      const stateDir = join(topo.tmp, `state${n}`);
      const name = `tso${n++}`;
      const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', name, '--mtu', String(mtu), ...(offload ? ['--tun-offload'] : [])]);
      t.teardown(async () => {
        gw.kill('SIGTERM');
        await gw.exited();
      });
      await waitForGateway(topo.client, stateDir, gw, 90_000); // four start-ups from source on 2 shared cores
      const got = await nsExec(topo.client, ['sh', '-c', `curl -sSf --max-time 120 http://${NGINX_IP}/20m.bin | sha256sum`], { timeoutMs: 150_000 });
      t.equal(got.stdout.split(' ')[0], down, 'download byte-exact');
      const r = await nsExec(
        topo.client,
        [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/tcp-peer.ts'), 'upload', PEER_IP, String(PEER_PORT), `${topo.tmp}/up.bin`],
        { timeoutMs: 150_000 },
      );
      t.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).remote, up, 'upload byte-exact (the sha256 the server computed)');
      await new Promise((res) => setTimeout(res, 1200)); // the next status publish
      const st = JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status;
      const on = Object.keys(st.counters).filter((k) => k.startsWith('tun_offload_') && st.counters[k] === 1);
      if (offload) t.ok(on.includes('tun_offload_csum'), `status shows the offloads on: ${on}`);
      else t.same(on, [], 'status shows none without --tun-offload');
      t.equal(st.drops?.tcp_bad_checksum ?? 0, 0, 'no segment dropped for its checksum');
      t.comment(`offloads ${on.join(',') || 'none'}; packets in ${st.counters.packetsIn}, bytes in ${st.counters.bytesIn}`);
    });
  }
}
