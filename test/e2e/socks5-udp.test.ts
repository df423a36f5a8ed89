// A `proxy` rule's UDP goes through its SOCKS5 upstream (RFC 1928 §7 UDP
// ASSOCIATE), tested against dante-server. The client's sockets are
// connected, so they take replies from the original destination only:
// receiving them proves the source. The echo server hashes what each sender
// sent and names it: the flow reached it from dante's external address (not
// the client's), and the three hashes (sent, echoed, received by the server)
// are equal. IPv4 and IPv6 destinations, through an upstream reached over
// IPv4 and one reached over IPv6. One association per flow, its TCP control
// connection tied to the flow: the flow's idle end closes it, and dante
// ending it ends the flow. Per-host mode: a mapped name goes to dante as the
// name, which dante resolves (the gateway's own resolver has another answer).
//
//   client ns (gateway) 192.0.2.1, 2001:db8:1::1 ── servers ns: dante 203.0.113.20, 2001:db8:10::20 :1080
//                                                              echo 203.0.113.12, 2001:db8:10::12 :7001, :7002
import t from 'tap';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, spawnInNs, type NsChild } from '../helpers/netns.js';
import { DNS_IP, PEER_IP, ROOT, addIpv6, clientResolvConf, makeTopology, startDnsPeer, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';
import { startDante } from '../helpers/dante.js';

t.setTimeout(300_000);
const SOCKS_IP = '203.0.113.20';
const SOCKS_IP6 = '2001:db8:10::20';
const PEER_IP6 = '2001:db8:10::12';
const HASH_PEER = join(ROOT, 'test/helpers/udp-hash-peer.ts');

const topo = await makeTopology(t);
await addIpv6(topo);
await nsExec(topo.servers, ['ip', 'addr', 'add', `${SOCKS_IP}/32`, 'dev', 'lo']);
for (const ip of [SOCKS_IP6, PEER_IP6]) await nsExec(topo.servers, ['ip', '-6', 'addr', 'add', `${ip}/128`, 'dev', 'lo', 'nodad']);
const echo = new Map<string, NsChild>();
for (const ip of [PEER_IP, PEER_IP6]) {
  for (const port of ['7001', '7002']) {
    const p = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', HASH_PEER, 'server', ip, port]);
    await p.waitForLine((l) => l.includes('listening'));
    echo.set(`${ip}|${port}`, p);
  }
}
// dante resolves names with the servers namespace's hosts file: game.example is the echo server there
const hostsDir = `/etc/netns/${topo.servers}`;
mkdirSync(hostsDir, { recursive: true });
t.teardown(() => rmSync(hostsDir, { recursive: true, force: true }));
writeFileSync(join(hostsDir, 'hosts'), `127.0.0.1 localhost\n${PEER_IP} game.example\n`);
const danteDir = join(topo.tmp, 'dante');
mkdirSync(danteDir);
let dante = await startDante(t, topo.servers, { addresses: [SOCKS_IP, SOCKS_IP6], dir: danteDir });

const config = join(topo.tmp, 'tunsteer.yaml');
writeFileSync(
  config,
  `upstreams:
  dante: { type: socks5, address: "${SOCKS_IP}:1080" }
  dante6: { type: socks5, address: "[${SOCKS_IP6}]:1080" }
rules:
  - { domain: game.example, action: proxy, upstream: dante }
  - { cidr: [${PEER_IP}/32, ${PEER_IP6}/128], port: 7001, action: proxy, upstream: dante }
  - { cidr: [${PEER_IP}/32, ${PEER_IP6}/128], port: 7002, action: proxy, upstream: dante6 }
`,
);

const client = async (host: string, port: number, n: number, seed: number) => {
  const r = await nsExec(topo.client, [process.execPath, '--import', 'tsx', HASH_PEER, 'client', host, String(port), String(n), String(seed)], {
    allowFail: true,
    timeoutMs: 90_000,
  });
  return JSON.parse(r.stdout.trim().split('\n').pop() || '{}');
};
/** The control connections dante holds from the gateway (its TCP port 1080, established). */
const controls = async () => (await nsExec(topo.servers, ['ss', '-Htn', 'state', 'established', '( sport = :1080 )'])).stdout.trim().split('\n').filter(Boolean).length;
const until = async (what: () => Promise<boolean>, ms: number) => {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return what();
};

const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--config', config, '--state-dir', stateDir, '--tun-name', 'tss0', '--udp-idle-timeout', '2000']);
await waitForGateway(topo.client, stateDir, gw);
const status = async () => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status.counters;
{
  for (const [host, port, upstream, from] of [
    [PEER_IP, 7001, 'dante', SOCKS_IP],
    [PEER_IP6, 7001, 'dante', SOCKS_IP6],
    [PEER_IP, 7002, 'dante6', SOCKS_IP],
    [PEER_IP6, 7002, 'dante6', SOCKS_IP6],
  ] as const) {
    t.test(`to ${host}:${port} through ${upstream}: byte for byte, replies from the destination, sent from dante`, async (t) => {
      const r = await client(host, port, 200, port + host.length);
      t.ok(r.ok, JSON.stringify(r));
      t.equal(r.n, 200);
      t.equal(r.echoSha256, r.sha256, 'every echo equal to what was sent (the client takes replies from the destination only)');
      t.equal(r.server.sha256, r.sha256, 'the server got the same bytes');
      t.equal(r.server.bytes, r.bytes);
      t.match(
        r.server.from,
        new RegExp(`^${(from.includes(':') ? `::ffff:${from}|${from}` : from).replaceAll('.', '\\.')}:`),
        `sent from dante's external address (${r.server.from})`,
      );
      const line = JSON.parse(
        await gw.waitForLine((l) => l.includes('"proto":"udp"') && l.includes(`${host.includes(':') ? `[${host}]` : host}:${port}`) && l.includes(`:${r.localPort}"`), 15_000),
      );
      t.match(line, { inbound: 'tun', via: upstream, action: 'proxy', end: 'idle' }, 'the flow ended idle and its line says which upstream');
      t.equal(line.up, r.bytes + 3, 'bytes up: the datagrams and FIN');
    });
  }

  t.test('one association per flow, its control connection closed with the flow', async (t) => {
    t.ok(await until(async () => (await controls()) === 0, 10_000), 'no control connection left once the flows expired');
    const a = client(PEER_IP, 7001, 150, 1);
    const b = client(PEER_IP, 7001, 150, 2);
    t.ok(await until(async () => (await controls()) === 2, 10_000), 'two flows, two associations');
    const [ra, rb] = await Promise.all([a, b]);
    t.ok(ra.ok && rb.ok, JSON.stringify([ra, rb]));
    t.not(ra.server.from, rb.server.from, 'each flow has its own relay socket at dante');
    t.ok(await until(async () => (await controls()) === 0, 10_000), 'both closed when the flows went idle');
    const c = await status();
    t.ok(c.udpSocksFlows >= 6, `flows through SOCKS5 counted (${c.udpSocksFlows})`);
    t.equal(c.udpSocksDropped, 0, 'no datagram from a relay dropped');
  });

  t.test('dante ending the association ends the flow', async (t) => {
    // a flow kept alive, then its control connection killed at dante: the flow ends at once, not by idling
    const keep = spawnInNs(t, topo.client, [
      process.execPath,
      '-e',
      `
      const s = require('dgram').createSocket('udp4');
      s.connect(7001, '${PEER_IP}', () => { const tick = setInterval(() => s.send('keep'), 200); setTimeout(() => { clearInterval(tick); s.close(); }, 20000); });
      s.on('message', () => {});`,
    ]);
    t.ok(await until(async () => (await controls()) === 1, 10_000), 'the flow has its association');
    await nsExec(topo.servers, ['ss', '-K', 'state', 'established', '( sport = :1080 )']);
    // ss -K resets it: dante's side is gone at once
    const line = JSON.parse(await gw.waitForLine((l) => l.includes('"proto":"udp"') && /"end":"proxy-(closed|reset)"/.test(l), 10_000));
    t.match(line, { via: 'dante', dst: `${PEER_IP}:7001` });
    t.ok(line.ms < 15_000, 'ended by dante, long before the flow went idle');
    keep.kill('SIGKILL');
  });

  t.test('an upstream that is down: the client hears port unreachable, the flow is logged', async (t) => {
    // dante stopped: nothing listens on 1080 any more
    dante.kill('SIGTERM');
    await dante.exited();
    const r = await nsExec(
      topo.client,
      [
        process.execPath,
        '-e',
        `
      const s = require('dgram').createSocket('udp4');
      s.on('error', (e) => { console.log(e.code); process.exit(0); });
      s.connect(7001, '${PEER_IP}', () => s.send('anyone?'));
      setTimeout(() => { console.log('none'); process.exit(0); }, 5000);`,
      ],
      { timeoutMs: 15_000 },
    );
    t.equal(r.stdout.trim(), 'ECONNREFUSED');
    const line = JSON.parse(await gw.waitForLine((l) => l.includes('"end":"upstream-failed'), 10_000));
    t.match(line, { via: 'dante', action: 'proxy' });
  });

  t.test('the route-all gateway stops', async (t) => {
    gw.kill('SIGTERM');
    t.equal((await gw.exited()).code, 0);
  });
}

t.test('per-host: a mapped name goes to dante as the name, and dante resolves it', async (t) => {
  // the gateway's resolver says 203.0.113.99 (nothing there); dante's hosts file says the echo server
  await startDnsPeer(t, topo, { 'game.example': ['203.0.113.99'] });
  await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
  dante = await startDante(t, topo.servers, { addresses: [SOCKS_IP, SOCKS_IP6], dir: danteDir });
  const stateDir = join(topo.tmp, 'state-ph');
  const gw = startGateway(t, topo.client, [
    '--mode',
    'per-host',
    '--host',
    'game.example',
    '--config',
    config,
    '--state-dir',
    stateDir,
    '--tun-name',
    'tss1',
    '--udp-idle-timeout',
    '2000',
  ]);
  await waitForGateway(topo.client, stateDir, gw);
  const fake = (await nsExec(topo.client, ['dig', '+short', '+time=3', '+tries=1', 'game.example'])).stdout.trim();
  t.match(fake, /^198\.1[89]\./, 'the name resolves to a fake IP');
  const r = await client(fake, 7001, 100, 42);
  t.ok(r.ok, JSON.stringify(r));
  t.equal(r.echoSha256, r.sha256, 'byte for byte, replies from the fake IP the client sent to');
  t.equal(r.server.sha256, r.sha256);
  t.match(r.server.from, /^203\.0\.113\.20:/, 'reached the echo server from dante');
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"proto":"udp"') && l.includes(`${fake}:7001`), 15_000));
  t.match(line, { rule: 'rules[0]', action: 'proxy', via: 'dante' }, 'decided by the name rule');
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
});
