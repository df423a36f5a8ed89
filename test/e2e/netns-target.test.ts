// up --netns / --pid: a namespace standing in for a container is steered
// while the gateway and its upstream sockets stay in the host's namespace.
//
//   container ns 198.51.100.2 ──veth── 198.51.100.1 client ns ("host", gateway) ──veth── servers ns
//
// The container has no way to the servers but through the gateway (the host
// does not forward), so every reply it gets crossed the gateway.
import t from 'tap';
import { join } from 'node:path';
import { createNetns, nsExec, snapshotRouting, spawnInNs, veth } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, clientResolvConf, makeTopology, startDnsPeer, startGateway, startNginx, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const topo = await makeTopology(t);
await Promise.all([startNginx(t, topo), startDnsPeer(t, topo)]);
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
const box = await createNetns(t, 'tsE-');
await veth(box, topo.client, { aAddr: '198.51.100.2/24', bAddr: '198.51.100.1/24' });
await nsExec(box, ['ip', 'route', 'add', 'default', 'via', '198.51.100.1']);
// a resolver off the container's link, as a cluster DNS service address is: it is reached through the TUN
await clientResolvConf(t, box, `nameserver ${DNS_IP}\n`);
await nsExec(topo.servers, ['sh', '-c', `head -c 1M /dev/urandom > ${topo.www}/1m.bin`]);
const sha1m = (await nsExec(topo.servers, ['sha256sum', `${topo.www}/1m.bin`])).stdout.split(' ')[0];
const hostBefore = await snapshotRouting(topo.client);
const boxBefore = await snapshotRouting(box);
const fetch = (path: string) => nsExec(box, ['sh', '-c', `curl -sS --max-time 10 http://${NGINX_IP}${path} | sha256sum`], { allowFail: true });

t.test('without the gateway the container reaches nothing', async (t) => {
  const r = await nsExec(box, ['curl', '-sS', '--max-time', '2', `http://${NGINX_IP}/hello`], { allowFail: true });
  t.not(r.code, 0);
});

t.test('--netns NAME: the container is steered, the host namespace untouched, SIGTERM restores the container', async (t) => {
  const dir = join(topo.tmp, 'state-n');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--netns', box, '--state-dir', dir, '--tun-name', 'tsn0']);
  await waitForGateway(topo.client, dir, gw);
  t.equal((await snapshotRouting(topo.client)).text, hostBefore.text, 'the host namespace has no new route, rule or device');
  const inBox = await snapshotRouting(box);
  t.match(inBox.text, /tsn0/, 'the TUN and its routes are in the container');
  const r = await nsExec(box, ['curl', '-sS', '--max-time', '10', `http://${NGINX_IP}/hello`]);
  t.equal(r.stdout, 'hello from nginx\n');
  t.equal((await fetch('/1m.bin')).stdout.split(' ')[0], sha1m, '1 MB byte-exact');
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes(`"dst":"${NGINX_IP}:80"`), 10_000));
  t.equal(line.inbound, 'tun', 'the connection log line names its inbound');
  const d = await nsExec(box, ['dig', '+short', '+time=3', 'other.example.com']);
  t.equal(d.stdout.trim(), NGINX_IP, "DNS from the container is answered by the gateway (forwarded by the host's resolver)");
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal((await snapshotRouting(box)).text, boxBefore.text, "the container's routes and rules are the originals");
  t.equal((await snapshotRouting(topo.client)).text, hostBefore.text);
});

t.test('kill -9 of everything, then `tunsteer down` from the host restores the container', async (t) => {
  const dir = join(topo.tmp, 'state-k');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--netns', box, '--state-dir', dir, '--tun-name', 'tsn1']);
  await waitForGateway(topo.client, dir, gw);
  const dp = JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', dir, '--json']))).stdout).status.dataPlane.pid as number;
  gw.kill('SIGKILL');
  process.kill(dp, 'SIGKILL');
  await gw.exited();
  t.not((await snapshotRouting(box)).text, boxBefore.text, 'the container is left steered into a dead TUN');
  const down = await nsExec(topo.client, tunsteerArgv(['down', '--state-dir', dir]));
  t.equal(down.code, 0, down.stdout + down.stderr);
  t.equal((await snapshotRouting(box)).text, boxBefore.text, 'byte for byte');
  t.equal((await snapshotRouting(topo.client)).text, hostBefore.text);
});

t.test('--pid PID: the namespace of a process in the container', async (t) => {
  const holder = spawnInNs(t, box, ['sleep', '120']);
  const dir = join(topo.tmp, 'state-p');
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--pid', String(holder.pid), '--state-dir', dir, '--tun-name', 'tsn2']);
  await waitForGateway(topo.client, dir, gw);
  const r = await nsExec(box, ['curl', '-sS', '--max-time', '10', `http://${NGINX_IP}/hello`]);
  t.equal(r.stdout, 'hello from nginx\n');
  gw.kill('SIGTERM');
  await gw.exited();
  t.equal((await snapshotRouting(box)).text, boxBefore.text);
  holder.kill('SIGKILL');
});

t.test('bad targets are refused with the flag named', async (t) => {
  const none = await nsExec(topo.client, tunsteerArgv(['up', '--mode', 'route-all', '--netns', 'tsE-no-such-ns', '--state-dir', join(topo.tmp, 'state-x')]), { allowFail: true });
  t.not(none.code, 0);
  t.match(none.stderr, /tsE-no-such-ns/);
  const ph = await nsExec(topo.client, tunsteerArgv(['up', '--mode', 'per-host', '--host', 'a.example', '--netns', box]), { allowFail: true });
  t.equal(ph.code, 2);
  t.match(ph.stderr, /--netns/);
  t.equal((await snapshotRouting(topo.client)).text, hostBefore.text);
});
