// --mode redirect and --mode tproxy on a router: a LAN client's TCP, IPv4 and
// IPv6, routed through the router namespace, is sent by nftables to tunsteer
// (REDIRECT: it reads the original destination back; TPROXY: the destination
// was never rewritten), which connects there itself. The server sees
// the request as the client made it; the nftables ruleset is the original
// after exit, and after kill -9 followed by `tunsteer down`.
//
//   lan ns 198.51.100.2, 2001:db8:1::2 ── router ns (gateway) ── servers ns 203.0.113.30, 2001:db8:3::10 (:8080)
import t from 'tap';
import { join } from 'node:path';
import { nsExec, snapshotRouting, spawnInNs } from '../helpers/netns.js';
import { ROOT, makeTopology, routerWithLan, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const topo = await makeTopology(t);
const { router, lan } = await routerWithLan(t, topo);
for (const ip of ['203.0.113.30', '2001:db8:3::10']) {
  const p = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/l7-peer.ts'), 'server', ip]);
  await p.waitForLine((l) => l.includes('listening'));
}
const ruleset = async () => (await nsExec(router, ['nft', 'list', 'ruleset'])).stdout;
const before = await ruleset();
const routingBefore = await snapshotRouting(router);
const headers = async (url: string) => {
  const r = await nsExec(lan, ['curl', '-sS', '--max-time', '10', '-H', 'X-Probe: redirect', url], { allowFail: true });
  return r.code === 0 ? JSON.parse(r.stdout) : { error: r.stderr };
};

t.test('without the gateway the servers cannot answer the LAN (no route back): every success below went through it', async (t) => {
  const r = await nsExec(lan, ['curl', '-sS', '--max-time', '2', 'http://203.0.113.30:8080/headers'], { allowFail: true });
  t.not(r.code, 0);
});

for (const mode of ['redirect', 'tproxy']) {
  t.test(`${mode}: IPv4 and IPv6 reach the server with the original Host and port; the log names the inbound`, async (t) => {
    const dir = join(topo.tmp, `state-${mode}`);
    const gw = startGateway(t, router, ['--mode', mode, '--state-dir', dir]);
    await waitForGateway(router, dir, gw);
    t.match(await ruleset(), /table inet tunsteer/);
    const v4 = await headers('http://203.0.113.30:8080/headers');
    t.equal(v4.host, '203.0.113.30:8080', `IPv4: ${JSON.stringify(v4)}`);
    t.equal(v4['x-probe'], 'redirect');
    const v6 = await headers('http://[2001:db8:3::10]:8080/headers');
    t.equal(v6.host, '[2001:db8:3::10]:8080', `IPv6: ${JSON.stringify(v6)}`);
    const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes('2001:db8:3::10'), 10_000));
    t.equal(line.inbound, mode);
    const direct = await nsExec(router, ['curl', '-sS', '--max-time', '3', 'http://127.0.0.1:15001/'], { allowFail: true });
    t.not(direct.code, 0, 'a connection straight to the listener (not redirected) is closed, not looped');
    gw.kill('SIGTERM');
    t.equal((await gw.exited()).code, 0);
    t.equal(await ruleset(), before, 'the ruleset is the original after exit');
    t.equal((await snapshotRouting(router)).text, routingBefore.text, 'and the rules and routes');
  });

  t.test(`${mode}: kill -9, then \`tunsteer down\`: the ruleset, rules and routes are the originals`, async (t) => {
    const dir = join(topo.tmp, `state-${mode}-k`);
    const gw = startGateway(t, router, ['--mode', mode, '--state-dir', dir]);
    await waitForGateway(router, dir, gw);
    const dp = JSON.parse((await nsExec(router, tunsteerArgv(['status', '--state-dir', dir, '--json']))).stdout).status.dataPlane.pid as number;
    gw.kill('SIGKILL');
    process.kill(dp, 'SIGKILL');
    await gw.exited();
    t.not(await ruleset(), before, 'left in place by kill -9');
    const d = await nsExec(router, tunsteerArgv(['down', '--state-dir', dir]));
    t.equal(d.code, 0, d.stdout + d.stderr);
    t.equal(await ruleset(), before);
    t.equal((await snapshotRouting(router)).text, routingBefore.text);
  });
}
