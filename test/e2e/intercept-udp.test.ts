// --mode tproxy on a router relays UDP too: a LAN client's datagrams, IPv4 and
// IPv6, routed through the router namespace, are delivered by nftables TPROXY
// to tunsteer's transparent socket with their original destination; tunsteer
// relays them from its own socket and sends the replies back FROM the
// original destination. The client's socket is connected, so it takes replies
// from the server's address only: receiving them proves the source. The
// server hashes what it got, the client what it sent and what came back: all
// three equal. The servers namespace has no route back to the LAN, so nothing
// below can succeed without the gateway. A closed port's port unreachable
// reaches the client; a burst and 300 flows at once pass; a rule's reject
// drops a flow; dig reaches a DNS server through it; each flow logs one line
// (inbound tproxy, proto udp) and expires; the ruleset, rules and routes are
// the originals after exit.
//
//   lan ns 198.51.100.2, 2001:db8:1::2 ── router ns (gateway) ── servers ns 203.0.113.30, 2001:db8:3::10 (:5300, :5301)
//                                                                           203.0.113.53 DNS
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, snapshotRouting, spawnInNs } from '../helpers/netns.js';
import { clientHelloMessage, initialDatagrams } from '../helpers/quic-initial-encoder.js';
import { DNS_IP, ROOT, makeTopology, routerWithLan, startDnsPeer, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const topo = await makeTopology(t);
const { router, lan } = await routerWithLan(t, topo);
const PEER = join(ROOT, 'test/helpers/udp-hash-peer.ts');
const servers = new Map<string, ReturnType<typeof spawnInNs>>();
for (const ip of ['203.0.113.30', '2001:db8:3::10']) {
  for (const port of ['5300', '5301']) {
    const p = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', PEER, 'server', ip, port]);
    await p.waitForLine((l) => l.includes('listening'));
    servers.set(`${ip}|${port}`, p);
  }
}
await startDnsPeer(t, topo);
{
  const p = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-peer.ts'), 'server', '203.0.113.30', '5400']);
  await p.waitForLine((l) => l.includes('listening'));
}
// 300 flows at once from one process: a socket each, one datagram, its echo awaited (3 s); prints the count answered
const MANY_FLOWS = `
const dgram = require('dgram');
let answered = 0, done = 0;
const N = 300;
for (let i = 0; i < N; i++) {
  const s = dgram.createSocket('udp4');
  const t = setTimeout(() => { s.close(); if (++done === N) end(); }, 3000);
  s.on('message', (m) => { if (m.toString() === 'flow ' + i) answered++; clearTimeout(t); s.close(); if (++done === N) end(); });
  s.connect(5400, '203.0.113.30', () => s.send('flow ' + i));
}
function end() { console.log(JSON.stringify({ answered })); }
`;
// a connected socket to a closed port: the error it reports (3 s), or none
const REFUSED = (host: string) => `
const s = require('dgram').createSocket('${host.includes(':') ? 'udp6' : 'udp4'}');
s.on('error', (e) => { console.log(JSON.stringify({ code: e.code })); process.exit(0); });
s.connect(5999, '${host}', () => s.send('anyone?'));
setTimeout(() => { console.log(JSON.stringify({ code: null })); process.exit(0); }, 3000);
`;
const ruleset = async () => (await nsExec(router, ['nft', 'list', 'ruleset'])).stdout;
const before = await ruleset();
const routingBefore = await snapshotRouting(router);
/** The Udp counters of /proc/net/snmp in a namespace (IPv4). */
const udpStats = async (ns: string): Promise<Record<string, number>> => {
  const [names, values] = (await nsExec(ns, ['grep', '^Udp:', '/proc/net/snmp'])).stdout
    .trim()
    .split('\n')
    .map((l) => l.split(/\s+/).slice(1));
  return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
};
const client = async (host: string, port: number, n: number, seed: number) => {
  const r = await nsExec(lan, [process.execPath, '--import', 'tsx', PEER, 'client', host, String(port), String(n), String(seed)], { allowFail: true, timeoutMs: 90_000 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { ok: false, error: r.stdout + r.stderr };
  }
};

t.test('without the gateway the servers cannot answer the LAN (no route back): every success below went through it', async (t) => {
  const r = await client('203.0.113.30', 5300, 1, 1);
  t.equal(r.ok, false, JSON.stringify(r));
});

t.test('tproxy: UDP over IPv4 and IPv6 relayed byte for byte, replies from the original destination; reject drops; dig works; the log names tproxy/udp', async (t) => {
  const dir = join(topo.tmp, 'state-tproxy-udp');
  const config = join(topo.tmp, 'udp-rules.json');
  writeFileSync(config, JSON.stringify({ rules: [{ name: 'no-5301', cidr: '203.0.113.30/32', port: 5301, action: 'reject' }] }));
  const gw = startGateway(t, router, ['--mode', 'tproxy', '--state-dir', dir, '--config', config, '--udp-idle-timeout', '1000']);
  await waitForGateway(router, dir, gw);
  t.match(await ruleset(), /meta l4proto udp tproxy ip to :15001/);

  const expect = [
    { host: '203.0.113.30', gwAddr: '192.0.2.1', dst: '203.0.113.30:5300' },
    { host: '2001:db8:3::10', gwAddr: '2001:db8:2::1', dst: '[2001:db8:3::10]:5300' },
  ];
  let seed = 7;
  for (const e of expect) {
    const r = await client(e.host, 5300, 96, seed++);
    t.equal(r.ok, true, `${e.host}: ${JSON.stringify(r)}`);
    if (!r.ok) continue;
    t.ok(r.bytes > 80_000, `${e.host}: ${r.n} datagrams, ${r.bytes} bytes (some fragmented)`);
    t.equal(r.server.n, r.n, `${e.host}: the server got every datagram`);
    t.equal(r.server.bytes, r.bytes);
    t.equal(r.server.sha256, r.sha256, `${e.host}: the server's sha256 of the payloads is the client's`);
    t.equal(r.echoSha256, r.sha256, `${e.host}: and so is that of the replies, which came from ${e.host}:5300 (connected socket)`);
    t.match(r.server.from, new RegExp(`^${e.gwAddr.replace(/\./g, '\\.')}:\\d+$`), `${e.host}: relayed by the gateway (the server saw ${r.server.from})`);
    const line = JSON.parse(
      await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes('"proto":"udp"') && l.includes(`"dst":"${e.dst}"`) && l.includes(`:${r.localPort}"`), 15_000),
    );
    t.equal(line.inbound, 'tproxy');
    t.equal(line.proto, 'udp');
    t.equal(line.end, 'idle');
    t.equal(line.rule, 'default');
    t.equal(line.up, r.bytes + 3, 'up: the payloads and FIN');
    t.ok(line.down >= r.bytes, `down ${line.down} >= ${r.bytes}`);
    t.match(line.src, e.host.includes(':') ? /^\[2001:db8:1::2\]:\d+$/ : /^198\.51\.100\.2:\d+$/);
  }

  // a burst: 5,000 datagrams, 64 in flight, every echo checked. On a busy machine the client
  // (node) can fall behind and its own receive buffer overflows: those losses are the kernel's
  // count in the LAN namespace, and every other datagram must come back. The flow opens with one
  // datagram, as real protocols do: the relay holds only 16 while it sets a flow up (CI once lost 2
  // of an opening burst of 64)
  const lanBefore = await udpStats(lan);
  const routerBefore = await udpStats(router);
  const burst = await nsExec(lan, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-peer.ts'), 'echo', '203.0.113.30', '5400', '5000', '64'], {
    allowFail: true,
    timeoutMs: 90_000,
  });
  const b = JSON.parse(burst.stdout.trim().split('\n').pop() || '{}');
  t.match(b, { ok: true, sent: 5000, corrupt: 0 }, `burst: ${burst.stdout}${burst.stderr}`);
  const lanLost = (await udpStats(lan)).RcvbufErrors - lanBefore.RcvbufErrors;
  const routerAfter = await udpStats(router);
  t.equal(b.received + lanLost, 5000, `burst: ${b.received}/5000 echoed (64 in flight); the client's own receive buffer overflowed ${lanLost} times`);
  t.equal(routerAfter.InErrors - routerBefore.InErrors, 0, 'the router lost no datagram (Udp InErrors)');
  t.ok(routerAfter.InDatagrams - routerBefore.InDatagrams >= 10_000, 'it received both directions of the burst');
  const many = await nsExec(lan, [process.execPath, '-e', MANY_FLOWS], { allowFail: true, timeoutMs: 30_000, env: { ...process.env, NODE_OPTIONS: '' } });
  t.equal(JSON.parse(many.stdout.trim() || '{}').answered, 300, `300 flows at once all answered: ${many.stdout}${many.stderr}`);

  for (const host of ['203.0.113.30', '2001:db8:3::10']) {
    const r = await nsExec(lan, [process.execPath, '-e', REFUSED(host)], { timeoutMs: 10_000 });
    t.equal(JSON.parse(r.stdout.trim()).code, 'ECONNREFUSED', `${host}:5999 is closed: the client hears port unreachable (ECONNREFUSED on its connected socket)`);
  }

  const rejected = await client('203.0.113.30', 5301, 1, 99);
  t.equal(rejected.ok, false, 'a flow the rules reject gets nothing back');
  const v6ok = await client('2001:db8:3::10', 5301, 4, 5);
  t.equal(v6ok.ok, true, `the rule is per destination: [2001:db8:3::10]:5301 goes through (${JSON.stringify(v6ok)})`);

  const dig = await nsExec(lan, ['dig', `@${DNS_IP}`, 'api.example.com', 'A', '+short', '+tries=1', '+time=3'], { allowFail: true });
  t.equal(dig.stdout.trim(), '203.0.113.10', `dig through tproxy: ${dig.stdout}${dig.stderr}`);
  const dnsLine = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes(`"dst":"${DNS_IP}:53"`), 15_000));
  t.equal(dnsLine.inbound, 'tproxy');
  t.equal(dnsLine.proto, 'udp');

  // straight to the port from the router itself (not through TPROXY): dropped, not relayed back to ourselves
  await nsExec(router, [process.execPath, '-e', "const s=require('dgram').createSocket('udp4');s.send('x',15001,'127.0.0.1',()=>s.close())"], {
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  // status --json: its counters (under .counters, or at the top) and the data plane's uid
  type Status = { counters?: Record<string, number>; dataPlane?: { uid: number } };
  const countersOf = (s: Status) => s.counters ?? (s as unknown as Record<string, number>);
  let status: Status = {};
  for (let i = 0; i < 50; i++) {
    status = JSON.parse((await nsExec(router, tunsteerArgv(['status', '--state-dir', dir, '--json']))).stdout).status;
    if (countersOf(status).tproxy_udpNotIntercepted >= 1) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const c = countersOf(status);
  t.equal(c.tproxy_udpNotIntercepted, 1, 'a datagram sent straight to the port is dropped and counted');
  t.ok(c.tproxy_udpRejected >= 1, `rejected datagrams counted: ${c.tproxy_udpRejected}`);
  t.ok(
    c.tproxy_udpFlowsTotal >= 305,
    `flows: ${c.tproxy_udpFlowsTotal}; counters: ${JSON.stringify(Object.fromEntries(Object.entries(c).filter(([k]) => k.startsWith('tproxy_udp'))))}`,
  );
  t.equal(c.tproxy_udpReplyErrors, 0);
  // idle flows expire (--udp-idle-timeout 1000): the table empties
  let flowsLeft = -1;
  for (let i = 0; i < 50 && flowsLeft !== 0; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const st = JSON.parse((await nsExec(router, tunsteerArgv(['status', '--state-dir', dir, '--json']))).stdout).status;
    flowsLeft = (st.counters ?? st).tproxy_udpFlows;
  }
  t.equal(flowsLeft, 0, 'every flow expired');
  t.not(status.dataPlane?.uid ?? 0, 0, `the data plane relayed all this without root (uid ${status.dataPlane?.uid}): its sockets were made before it dropped it`);

  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.equal(await ruleset(), before, 'the ruleset is the original after exit');
  t.equal((await snapshotRouting(router)).text, routingBefore.text, 'and the rules and routes');
});

// QUIC Initial datagrams to the echo server from a connected socket in the LAN; the count echoed in 1.5 s
const QUIC_SEND = (hex: string[]) => `
const s = require('dgram').createSocket('udp4');
let answers = 0;
s.on('message', () => answers++);
s.connect(5400, '203.0.113.30', async () => {
  for (const h of ${JSON.stringify(hex)}) { s.send(Buffer.from(h, 'hex')); await new Promise((r) => setTimeout(r, 20)); }
  setTimeout(() => { console.log(JSON.stringify({ answers, local: s.address().port })); process.exit(0); }, 1500);
});
`;

t.test('tproxy: QUIC is read as on the TUN path: its SNI decides the flow, a hello over datagrams is held until read, the line names it', async (t) => {
  const dir = join(topo.tmp, 'state-tproxy-quic');
  const config = join(topo.tmp, 'quic-rules.json');
  writeFileSync(config, JSON.stringify({ rules: [{ name: 'no-blocked', domain: 'blocked.example.test', action: 'reject' }] }));
  const gw = startGateway(t, router, ['--mode', 'tproxy', '--state-dir', dir, '--config', config, '--udp-idle-timeout', '1000']);
  await waitForGateway(router, dir, gw);
  const send = async (dgrams: Buffer[]) => {
    const r = await nsExec(lan, [process.execPath, '-e', QUIC_SEND(dgrams.map((d) => d.toString('hex')))], { timeoutMs: 15_000, env: { ...process.env, NODE_OPTIONS: '' } });
    return JSON.parse(r.stdout.trim()) as { answers: number; local: number };
  };
  const blocked = await send(initialDatagrams(await clientHelloMessage('blocked.example.test')));
  t.equal(blocked.answers, 0, 'the blocked name: dropped, nothing echoed');
  const spanning = initialDatagrams(await clientHelloMessage('blocked.example.test', ['h3'], 2600), { reverse: true });
  t.ok(spanning.length >= 3, `the hello spans ${spanning.length} datagrams, frames reordered`);
  t.equal((await send(spanning)).answers, 0, 'read across datagrams: dropped');
  const okDgrams = initialDatagrams(await clientHelloMessage('ok.example.test', ['h3'], 2600), { reverse: true });
  const ok = await send(okDgrams);
  t.equal(ok.answers, okDgrams.length, 'an allowed name: every held datagram relayed and echoed');
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes(`:${ok.local}"`) && l.includes('"sni":"ok.example.test"'), 15_000));
  t.match(line, { inbound: 'tproxy', proto: 'quic', rule: 'default', action: 'direct' });
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
});
