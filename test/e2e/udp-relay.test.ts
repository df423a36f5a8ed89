// UDP through the gateway in route-all mode: datagrams relayed through
// per-flow kernel sockets, ICMP port unreachable back to the client, expiry.
import t from 'tap';
import { join } from 'node:path';
import { nsExec, spawnNodeInNs } from '../helpers/netns.js';
import { PEER_IP, ROOT, makeTopology, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const UDP_PORT = 7001;
const topo = await makeTopology(t);
const server = spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/udp-peer.ts'), ['server', PEER_IP, String(UDP_PORT)]);
await server.waitForLine((l) => l.includes('listening'));
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsu0', '--udp-idle-timeout', '2000']);
await waitForGateway(topo.client, stateDir, gw);
const peer = async (mode: string, port: number, ...args: string[]) =>
  JSON.parse(
    (
      await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-peer.ts'), mode, PEER_IP, String(port), ...args], {
        timeoutMs: 90_000,
        allowFail: true,
      })
    ).stdout
      .trim()
      .split('\n')
      .pop() || '{}',
  );
const status = async () => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout);

t.test('10,000 datagrams echoed through the gateway, every payload checked', async (t) => {
  const r = await peer('echo', UDP_PORT, '10000');
  t.equal(r.corrupt, 0, 'no corrupted or unexpected datagram');
  t.equal(r.sent, 10000);
  t.ok(r.received >= 9900, `received ${r.received} of 10000 (lost ${r.lost})`);
});

t.test('a datagram to a closed port yields ICMP port unreachable at the client', async (t) => {
  const r = await peer('refused', 7999);
  t.equal(r.code, 'ECONNREFUSED', JSON.stringify(r));
});

t.test('idle flows expire and are logged', async (t) => {
  const line = await gw.waitForLine((l) => l.includes('"proto":"udp"') && l.includes(`${PEER_IP}:${UDP_PORT}`), 15_000);
  const rec = JSON.parse(line);
  t.equal(rec.end, 'idle');
  t.ok(rec.up > 0 && rec.down > 0, 'bytes both ways');
  let flows = -1;
  for (let i = 0; i < 30 && flows !== 0; i++) {
    flows = (await status()).status.counters.udpFlows;
    if (flows !== 0) await new Promise((r) => setTimeout(r, 500));
  }
  t.equal(flows, 0, 'no UDP flow left after the idle timeout');
});
