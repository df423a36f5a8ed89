// UDP sessions against a loopback echo socket: the flow count is bounded,
// rules can refuse a flow with port unreachable, and idle flows expire.
import t from 'tap';
import dgram from 'node:dgram';
import { UdpSessions, type UdpFlowKey } from '../../../../src/proxy/tun/udp-sessions.js';
import { ipv4ToString, parseIpv4 } from '../../../../src/net/address.js';
import { fakeSocks } from '../../../helpers/fake-socks5-udp.js';

const LO = parseIpv4('127.0.0.1')!;
const CLIENT = parseIpv4('10.0.0.2')!;

async function echoServer(t: { teardown(f: () => void): void }): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  t.teardown(() => s.close());
  return s.address().port;
}

function harness(opts: ConstructorParameters<typeof UdpSessions>[1]) {
  const replies: { sport: number; dport: number; data: string }[] = [];
  const unreachable: UdpFlowKey[] = [];
  const ended: { end: string; rule: string; action: string; via?: string }[] = [];
  let now = 0;
  const u = new UdpSessions(
    {
      sendUdp: (_s, _d, sport, dport, p, off, len) => replies.push({ sport, dport, data: p.toString('latin1', off, off + len) }),
      sendPortUnreachable: (f) => unreachable.push({ ...f }),
      sendHostUnreachable: (f) => unreachable.push({ ...f }),
      addresses: { text: ipv4ToString, family: () => 4, hold: () => {}, release: () => {} },
    },
    opts,
    (e) => ended.push(e),
    () => now,
  );
  const send = (sport: number, dport: number, text: string) => {
    const b = Buffer.from(text);
    u.onDatagram({ clientIp: CLIENT, serverIp: LO, clientPort: sport, serverPort: dport }, b, 0, b.length, now);
  };
  return { u, replies, unreachable, ended, send, advance: (ms: number) => (now += ms) };
}

const until = async (f: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!f() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return f();
};

t.test('the flow count is bounded: datagrams of new flows beyond it are dropped and counted', async (t) => {
  const port = await echoServer(t);
  const h = harness({ maxFlows: 2, idleMs: 60_000 });
  h.send(40001, port, 'a');
  h.send(40002, port, 'b');
  h.send(40003, port, 'c');
  t.equal(h.u.size, 2);
  t.equal(h.u.counters.udpDropped, 1);
  t.ok(await until(() => h.replies.length === 2), 'the two admitted flows are echoed');
  t.same(h.replies.map((r) => r.data).sort(), ['a', 'b']);
  h.u.closeAll();
});

t.test('a rule can refuse a flow: port unreachable, no socket, counted', async (t) => {
  const port = await echoServer(t);
  const h = harness({ admit: (f) => (f.serverPort === port ? { rule: 'rules[0]', action: 'reject' } : { rule: 'default', action: 'direct' }) });
  h.send(40010, port, 'x');
  t.equal(h.u.size, 0);
  t.equal(h.unreachable.length, 1);
  t.equal(h.unreachable[0].serverPort, port);
  t.equal(h.u.counters.udpUnreachable, 1);
});

t.test('idle flows expire and log their rule', async (t) => {
  const port = await echoServer(t);
  const h = harness({ idleMs: 5000, admit: () => ({ rule: 'rules[3]', action: 'direct' }) });
  h.send(40020, port, 'hello');
  t.ok(await until(() => h.replies.length === 1));
  h.advance(4000);
  h.u.sweep(4000);
  t.equal(h.u.size, 1, 'not yet');
  h.advance(2000);
  h.u.sweep(6000);
  t.equal(h.u.size, 0);
  t.match(h.ended, [{ end: 'idle', rule: 'rules[3]', action: 'direct' }]);
});

t.test('a flow the rules cannot decide yet: its datagrams are held, no socket, until they decide', async (t) => {
  const port = await echoServer(t);
  // decides on the third datagram: direct for "go", reject for "no"
  const admit = () => {
    let seen = '';
    const step = (p: Buffer | null) => {
      seen += p === null ? '|end' : p.toString();
      if (seen.includes('go')) return { rule: 'r0', action: 'direct', proto: 'quic', sni: 'a.example' };
      if (seen.includes('no') || p === null) return { rule: 'r1', action: 'reject' };
      return undefined;
    };
    return (_f: UdpFlowKey, p: Buffer) => step(p) ?? { next: step };
  };
  const h = harness({ idleMs: 60_000, admitMs: 1000, admit: admit() });
  h.send(41001, port, 'one,');
  h.send(41001, port, 'two,');
  t.equal(h.u.size, 1, 'one flow, undecided');
  await new Promise((r) => setTimeout(r, 100));
  t.same(h.replies, [], 'nothing sent while undecided');
  h.send(41001, port, 'go');
  t.ok(await until(() => h.replies.length === 3), 'decided: everything held goes, in order');
  t.same(
    h.replies.map((r) => r.data),
    ['one,', 'two,', 'go'],
  );
  h.u.closeAll();
  t.match(h.ended[0], { rule: 'r0', action: 'direct', proto: 'quic', sni: 'a.example' }, 'the log line says what the flow was');

  const r = harness({ idleMs: 60_000, admit: admit() });
  r.send(41002, port, 'x,');
  r.send(41002, port, 'no');
  t.equal(r.unreachable.length, 1, 'a reject after holding: port unreachable');
  t.equal(r.u.size, 0);
  t.match(r.ended[0], { end: 'rejected', rule: 'r1' });

  const s = harness({ idleMs: 60_000, admitMs: 1000, admit: admit() });
  s.send(41003, port, 'quiet');
  s.advance(1500);
  s.u.sweep(1500);
  t.equal(s.unreachable.length, 1, 'past admitMs the rules decide on what came');
  t.equal(s.u.size, 0);

  const full = harness({ idleMs: 60_000, maxPending: 4, admit: admit() });
  for (let i = 0; i < 4; i++) full.send(41004, port, `d${i},`);
  t.equal(full.unreachable.length, 1, 'the hold full: decided with what came');
});

t.test('a flow through a SOCKS5 upstream: its own association, ended with the flow and ending it', async (t) => {
  const fake = await fakeSocks(t);
  const upstream = { name: 'fake', type: 'socks5' as const, host: '127.0.0.1', port: fake.port };
  const h = harness({ idleMs: 1000, admit: () => ({ rule: 'via-fake', action: 'proxy', upstream }) });
  h.send(41001, 5353, 'one');
  h.send(41001, 5353, 'two');
  h.send(41002, 5353, 'other flow');
  t.ok(await until(() => h.replies.length === 3), 'held datagrams sent once the association is up, replies back');
  t.same(
    h.replies.filter((r) => r.dport === 41001).map((r) => r.data),
    ['one', 'two'],
  );
  t.ok(
    h.replies.every((r) => r.sport === 5353),
    'from the port the client sent to',
  );
  t.equal(fake.controls.length, 2, 'one association per flow');
  t.equal(h.u.counters.udpSocksFlows, 2);
  // the proxy ends one association: its flow ends at once
  fake.controls[1].end();
  t.ok(await until(() => h.ended.length === 1));
  t.match(h.ended[0], { end: 'proxy-closed', rule: 'via-fake', action: 'proxy', via: 'fake' });
  // the other flow goes idle: its control connection is closed
  h.advance(5000);
  h.u.sweep(5000);
  t.match(h.ended[1], { end: 'idle', via: 'fake' });
  t.ok(await until(() => fake.controls[0].destroyed || fake.controls[0].readableEnded), 'the idle flow closed its control connection');
});

t.test('an upstream that refuses the association: port unreachable to the client, the flow logged', async (t) => {
  const fake = await fakeSocks(t, { refuse: 2 });
  const upstream = { name: 'refusing', type: 'socks5' as const, host: '127.0.0.1', port: fake.port };
  const h = harness({ idleMs: 1000, admit: () => ({ rule: 'r', action: 'proxy', upstream }) });
  h.send(41003, 5353, 'x');
  t.ok(await until(() => h.ended.length === 1));
  t.equal(h.unreachable.length, 1);
  t.match(h.ended[0], { end: /^upstream-failed: .*connection not allowed by ruleset/, via: 'refusing' });
});

t.test('a datagram to port 0: the flow ends with the error, no unhandled rejection (the data plane goes on)', async (t) => {
  const port = await echoServer(t);
  const h = harness({ maxFlows: 8, idleMs: 60_000 });
  h.send(40010, 0, 'to port 0');
  t.ok(await until(() => h.ended.length === 1), 'the flow ended');
  t.match(h.ended[0], { end: /^error / }, `with the socket's error: ${JSON.stringify(h.ended[0])}`);
  h.send(40011, port, 'after');
  t.ok(await until(() => h.replies.length === 1), 'the next flow is relayed');
  h.u.closeAll();
});
