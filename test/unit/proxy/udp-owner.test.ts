// Who sent a UDP flow: with a rule reading the owner, a new flow's datagrams
// are held while its client socket is looked up (a fake lookup here, answered
// when the test says), then released or refused; a lookup that never answers
// gives no owner once the admission time is up; without such a rule nothing
// is held or looked up; one lookup per flow. Through both relays: the TUN's
// (UdpSessions) and TPROXY's, each against a loopback echo socket.
import t from 'tap';
import dgram from 'node:dgram';
import { Policy } from '../../../src/proxy/policy.js';
import { admitUdp, OWNER_TIMED_OUT, type UdpPending, type UdpVerdict } from '../../../src/proxy/udp-admission.js';
import type { OwnerAnswer, OwnerLookup } from '../../../src/proxy/owner-lookup.js';
import type { Rule } from '../../../src/proxy/rules/rule-types.js';
import type { Endpoint } from '../../../src/net/endpoint.js';
import { UdpSessions, type UdpFlowEnd, type UdpFlowKey } from '../../../src/proxy/tun/udp-sessions.js';
import { TproxyUdp } from '../../../src/proxy/tproxy-udp.js';
import { ipv4ToString, parseIpv4 } from '../../../src/net/address.js';
import { clientHelloMessage, initialDatagrams } from '../../helpers/quic-initial-encoder.js';

const DAEMON = 1;
const rules: Rule[] = [
  // daemon's UDP to port 9999 is refused; a process rule for port 7777
  { index: 0, match: { user: [{ from: DAEMON, to: DAEMON }], port: [{ from: 9999, to: 9999 }] }, action: { type: 'reject' } },
  { index: 1, match: { process: [{ name: 'socat' }], port: [{ from: 7777, to: 7777 }] }, action: { type: 'reject' } },
  { index: 2, match: { domain: ['blocked.example'], user: [{ from: DAEMON, to: DAEMON }] }, action: { type: 'reject' } },
];
const policy = new Policy(rules, new Map(), new Map());

/** A lookup the test answers: each call is recorded and waits for `answer`. */
function fakeOwners() {
  const calls: { proto: string; src: Endpoint; dst: Endpoint; need: number; answer: (a: OwnerAnswer) => void; fail: (e: Error) => void }[] = [];
  const owners: OwnerLookup = {
    lookup: (proto, src, dst, need) =>
      new Promise<OwnerAnswer>((answer, fail) => {
        calls.push({ proto, src, dst, need, answer, fail });
      }),
  };
  return { owners, calls };
}
const uid = (n: number): OwnerAnswer => ({ owner: { uid: n } });
const flow = (dstPort: number, srcPort = 40000) => ({ dstAddress: '127.0.0.1', dstPort, srcAddress: '10.0.0.2', srcPort });
const tick = () => new Promise((r) => setImmediate(r));

t.test('admission: the verdict waits for the owner, then comes by itself', async (t) => {
  const f = fakeOwners();
  const r = admitUdp(policy, flow(9999), Buffer.from('x'), undefined, f.owners);
  t.ok('next' in r, 'not decided before the owner is known');
  const p = r as UdpPending;
  t.equal(p.awaiting, true, 'waiting for an answer, not for datagrams');
  t.equal(f.calls.length, 1);
  t.match(f.calls[0], { proto: 'udp', src: { family: 4, address: '10.0.0.2', port: 40000 }, dst: { family: 4, address: '127.0.0.1', port: 9999 }, need: 1 });
  t.equal(p.next(Buffer.from('y')), undefined, 'more datagrams do not decide it');
  const got: UdpVerdict[] = [];
  p.later!((v) => got.push(v));
  f.calls[0].answer(uid(DAEMON));
  await tick();
  t.match(got, [{ action: 'reject', rule: 'rules[0]', owner: { owner: { uid: DAEMON } } }], "daemon's flow: refused, the owner in the verdict");
  t.equal(p.awaiting, false);
  t.equal(p.next(null), undefined, 'decided once');

  const root = admitUdp(policy, flow(9999), Buffer.from('x'), undefined, f.owners) as UdpPending;
  const v: UdpVerdict[] = [];
  root.later!((x) => v.push(x));
  f.calls[1].answer(uid(0));
  await tick();
  t.match(v, [{ action: 'direct', rule: 'default', owner: { owner: { uid: 0 } } }], "root's: direct");
});

t.test('admission: no answer in time is no owner, and a late answer changes nothing', async (t) => {
  const f = fakeOwners();
  const p = admitUdp(policy, flow(9999), Buffer.from('x'), undefined, f.owners) as UdpPending;
  const later: UdpVerdict[] = [];
  p.later!((v) => later.push(v));
  const v = p.next(null);
  t.match(v, { action: 'direct', rule: 'default', owner: { owner: null, why: OWNER_TIMED_OUT } }, 'the user rule does not match a flow with no owner');
  f.calls[0].answer(uid(DAEMON));
  await tick();
  t.same(later, [], 'the late answer is dropped');

  const failing = admitUdp(policy, flow(9999), Buffer.from('x'), undefined, f.owners) as UdpPending;
  failing.later!((x) => later.push(x));
  f.calls[1].fail(new Error('netlink gone'));
  await tick();
  t.match(later, [{ action: 'direct', owner: { owner: null, why: 'lookup failed: netlink gone' } }], 'a failed lookup: no owner, and why');
});

t.test('admission: no rule reads the owner (or none could match this flow): no hold, no lookup', async (t) => {
  const f = fakeOwners();
  const none = new Policy([{ index: 0, match: { port: [{ from: 9999, to: 9999 }] }, action: { type: 'reject' } }], new Map(), new Map());
  t.match(admitUdp(none, flow(9999), Buffer.from('x'), undefined, f.owners), { action: 'reject', rule: 'rules[0]' });
  t.notOk('owner' in (admitUdp(none, flow(5353), Buffer.from('x'), undefined, f.owners) as UdpVerdict), 'no owner in the line');
  t.match(admitUdp(policy, flow(5353), Buffer.from('x'), undefined, f.owners), { action: 'direct', rule: 'default' }, 'the owner rules are for other ports');
  t.equal(f.calls.length, 0, 'never looked up');
  t.match(
    admitUdp(policy, flow(9999), Buffer.from('x')),
    { action: 'direct', owner: { owner: null, why: 'owner lookups are off here' } },
    'no lookup wired in: decided at once, no owner',
  );
});

t.test('admission: a process rule asks for the process; a QUIC name rule asks once the hello is read', async (t) => {
  const f = fakeOwners();
  const p = admitUdp(policy, flow(7777), Buffer.from('x'), undefined, f.owners) as UdpPending;
  t.equal(f.calls[0].need, 2, 'the process too');
  const got: UdpVerdict[] = [];
  p.later!((v) => got.push(v));
  f.calls[0].answer({ owner: { uid: 0, pid: 42, exe: '/usr/bin/socat', comm: 'socat' } });
  await tick();
  t.match(got, [{ action: 'reject', rule: 'rules[1]' }]);

  const spanning = initialDatagrams(await clientHelloMessage('blocked.example', ['h3'], 2000), { reverse: true });
  const q = admitUdp(policy, flow(443), spanning[0], undefined, f.owners) as UdpPending;
  t.equal(f.calls.length, 1, 'not while the hello is being read');
  t.equal(q.awaiting, false);
  for (const d of spanning.slice(1)) t.equal(q.next(d), undefined);
  t.equal(f.calls.length, 2, 'the name known: the owner could matter, looked up');
  q.later!((v) => got.push(v));
  f.calls[1].answer(uid(DAEMON));
  await tick();
  t.match(got[1], { action: 'reject', rule: 'rules[2]', proto: 'quic', sni: 'blocked.example', owner: { owner: { uid: DAEMON } } });
});

async function echoServer(t: { teardown(f: () => void): void }, type: 'udp4' | 'udp6' = 'udp4'): Promise<number> {
  const s = dgram.createSocket(type);
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  await new Promise<void>((r) => s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r));
  t.teardown(() => s.close());
  return s.address().port;
}

const until = async (f: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!f() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return f();
};

/** The TUN relay with admitUdp and a fake lookup, as the data plane wires them. */
function tunRelay(p: Policy, owners: OwnerLookup, opts: { maxPending?: number; idleMs?: number } = {}) {
  const replies: string[] = [];
  const unreachable: UdpFlowKey[] = [];
  const ended: UdpFlowEnd[] = [];
  let now = 0;
  const u = new UdpSessions(
    {
      sendUdp: (_s, _d, _sp, _dp, b, off, len) => replies.push(b.toString('latin1', off, off + len)),
      sendPortUnreachable: (f) => unreachable.push({ ...f }),
      sendHostUnreachable: (f) => unreachable.push({ ...f }),
      addresses: { text: ipv4ToString, family: () => 4, hold: () => {}, release: () => {} },
    },
    {
      idleMs: 60_000,
      admitMs: 1000,
      ownerWaitMs: 3000,
      ...opts,
      admit: (f, payload) =>
        admitUdp(p, { dstAddress: ipv4ToString(f.serverIp), dstPort: f.serverPort, srcAddress: ipv4ToString(f.clientIp), srcPort: f.clientPort }, payload, undefined, owners),
    },
    (e) => ended.push(e),
    () => now,
  );
  const CLIENT = parseIpv4('10.0.0.2')!;
  const LO = parseIpv4('127.0.0.1')!;
  const send = (sport: number, dport: number, text: string) => {
    const b = Buffer.from(text);
    u.onDatagram({ clientIp: CLIENT, serverIp: LO, clientPort: sport, serverPort: dport }, b, 0, b.length, now);
  };
  return { u, replies, unreachable, ended, send, at: (ms: number) => (now = ms) };
}

t.test('TUN relay: held while the owner is looked up, then released in order, one lookup per flow', async (t) => {
  const port = await echoServer(t);
  const p = new Policy([{ index: 0, match: { user: [{ from: DAEMON, to: DAEMON }] }, action: { type: 'reject' } }], new Map(), new Map());
  const f = fakeOwners();
  const h = tunRelay(p, f.owners, { maxPending: 4 });
  for (let i = 0; i < 6; i++) h.send(40100, port, `d${i}`);
  t.equal(f.calls.length, 1, 'one lookup for the flow, not one per datagram');
  t.match(f.calls[0], { src: { address: '10.0.0.2', port: 40100 }, dst: { address: '127.0.0.1', port } });
  t.equal(h.u.size, 1, 'one flow, undecided');
  t.equal(h.unreachable.length, 0, 'a full hold does not force a verdict without the owner');
  t.equal(h.u.counters.udpDropped, 2, 'what did not fit in the hold is dropped and counted');
  await new Promise((r) => setTimeout(r, 50));
  t.same(h.replies, [], 'nothing relayed before the owner is known');
  f.calls[0].answer(uid(0));
  t.ok(await until(() => h.replies.length === 4), 'released: everything held goes out');
  t.same(h.replies, ['d0', 'd1', 'd2', 'd3'], 'in order');
  h.send(40100, port, 'after');
  t.ok(await until(() => h.replies.length === 5));
  t.equal(f.calls.length, 1, 'the verdict lasts the flow: no lookup for later datagrams');
  h.u.closeAll();
  t.match(h.ended, [{ rule: 'default', action: 'direct', owner: { uid: 0 } }], "the flow's line names its owner");
  t.notOk('owner_why' in h.ended[0]);
});

t.test('TUN relay: held then refused: port unreachable, nothing sent, the line names the owner', async (t) => {
  let received = 0;
  const s = dgram.createSocket('udp4');
  s.on('message', () => received++);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  t.teardown(() => s.close());
  const p = new Policy([{ index: 0, match: { user: [{ from: DAEMON, to: DAEMON }] }, action: { type: 'reject' } }], new Map(), new Map());
  const f = fakeOwners();
  const h = tunRelay(p, f.owners);
  h.send(40200, s.address().port, 'one');
  h.send(40200, s.address().port, 'two');
  f.calls[0].answer(uid(DAEMON));
  t.ok(await until(() => h.unreachable.length === 1), 'port unreachable to the client');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(received, 0, 'nothing reached the destination');
  t.equal(h.u.size, 0);
  t.match(h.ended, [{ end: 'rejected', rule: 'rules[0]', action: 'reject', up: 6, owner: { uid: DAEMON } }]);
  t.equal(h.u.counters.udpDropped, 2, 'the held datagrams are dropped, counted');
});

t.test('TUN relay: a lookup that never answers gives no owner after ownerWaitMs; the line says why', async (t) => {
  const port = await echoServer(t);
  const p = new Policy([{ index: 0, match: { user: [{ from: DAEMON, to: DAEMON }] }, action: { type: 'reject' } }], new Map(), new Map());
  const f = fakeOwners();
  // idle as short as the admission bound: an undecided flow must not expire before it is decided
  const h = tunRelay(p, f.owners, { idleMs: 1000 });
  h.send(40300, port, 'slow');
  h.at(1500);
  h.u.sweep(1500);
  t.equal(h.u.size, 1, 'past idleMs and admitMs: still waiting for the owner, not expired');
  t.equal(h.replies.length, 0, 'nothing relayed yet');
  h.at(3000);
  h.u.sweep(3000);
  t.ok(await until(() => h.replies.length === 1), 'decided without an owner: the user rule does not match, relayed');
  f.calls[0].answer(uid(DAEMON));
  await tick();
  h.send(40300, port, 'more');
  t.ok(await until(() => h.replies.length === 2), 'the late answer changed nothing');
  h.u.closeAll();
  t.match(h.ended, [{ action: 'direct', owner: null, owner_why: OWNER_TIMED_OUT }]);
});

t.test('TPROXY relay: held then released, held then dropped, the owner in each line', async (t) => {
  const port = await echoServer(t);
  const p = new Policy([{ index: 0, match: { user: [{ from: DAEMON, to: DAEMON }] }, action: { type: 'reject' } }], new Map(), new Map());
  const f = fakeOwners();
  const replies: string[] = [];
  const ends: UdpFlowEnd[] = [];
  let now = 0;
  const relay = new TproxyUdp(
    {
      idleMs: 1000,
      maxFlows: 16,
      onFlowEnd: (e) => ends.push(e),
      sendReply: (_from, to, msg) => (replies.push(`${to.port}:${msg.toString()}`), msg.length),
      admit: (src, dst, payload) => admitUdp(p, { dstAddress: dst.address, dstPort: dst.port, srcAddress: src.address, srcPort: src.port }, payload, undefined, f.owners),
    },
    () => now,
  );
  t.teardown(() => relay.close());
  const ep = (address: string, port: number): Endpoint => ({ family: 4, address, port });
  const dst = ep('127.0.0.1', port);
  relay.input(ep('127.0.0.1', 40401), dst, Buffer.from('a1'));
  relay.input(ep('127.0.0.1', 40401), dst, Buffer.from('a2'));
  relay.input(ep('127.0.0.1', 40402), dst, Buffer.from('b1'));
  t.equal(f.calls.length, 2, 'one lookup per flow');
  t.match(f.calls[1], { src: { address: '127.0.0.1', port: 40402 }, dst: { port } });
  await new Promise((r) => setTimeout(r, 50));
  t.same(replies, [], 'both held');
  f.calls[0].answer(uid(0));
  f.calls[1].answer(uid(DAEMON));
  t.ok(await until(() => replies.length === 2), "root's flow released");
  t.same(replies, ['40401:a1', '40401:a2']);
  t.match(relay.counters, { udpRejected: 1, udpDropped: 1 }, "daemon's held datagram dropped");
  t.match(ends, [{ src: '127.0.0.1:40402', end: 'rejected', rule: 'rules[0]', owner: { uid: DAEMON } }]);
  relay.input(ep('127.0.0.1', 40403), dst, Buffer.from('c1'));
  now = 1500;
  relay.sweep(now);
  t.notOk(
    ends.some((e) => e.src === '127.0.0.1:40403'),
    'past idleMs and ADMIT_MS: still waiting for the owner, not expired',
  );
  t.equal(replies.length, 2, 'nothing of it relayed yet');
  now = 3000;
  relay.sweep(now);
  t.ok(await until(() => replies.length === 3), 'no answer within 3 s: no owner, relayed');
  relay.close();
  t.match(
    ends.find((e) => e.src === '127.0.0.1:40403'),
    { action: 'direct', owner: null, owner_why: OWNER_TIMED_OUT },
  );
  t.match(
    ends.find((e) => e.src === '127.0.0.1:40401'),
    { action: 'direct', owner: { uid: 0 } },
  );
});
