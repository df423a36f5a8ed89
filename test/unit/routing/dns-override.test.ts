// The gateway's DNS answers against a fake upstream resolver on loopback.
import t from 'tap';
import { ipv4ToInt } from '../../../src/cidr.js';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { DnsOverride } from '../../../src/routing/dns-override.js';
import { FakeIpPool } from '../../../src/routing/fake-ip-pool.js';
import { HostPatterns } from '../../../src/routing/host-patterns.js';

/** dns-packet decodes the reply's rcode too; its types leave it out. */
const decode = (b: Buffer) => dnsPacket.decode(b) as dnsPacket.DecodedPacket & { rcode: string };
/** The TTL of an answer (an OPT record, the one kind without one, is not expected here). */
const ttl = (a: dnsPacket.Answer) => (a as { ttl?: number }).ttl;

function upstreamAnswer(q: dnsPacket.Packet, tcp: boolean): Buffer {
  const name = q.questions![0].name;
  if (name === 'known.test') {
    return dnsPacket.encode({ id: q.id, type: 'response', flags: 0x8180, questions: q.questions, answers: [{ name, type: 'A', ttl: 60, data: '192.0.2.55' }] });
  }
  if (name === 'big.test') {
    const answers = Array.from({ length: 40 }, (_, i) => ({ name, type: 'A' as const, ttl: 60, data: `192.0.2.${i + 1}` }));
    if (tcp) return dnsPacket.encode({ id: q.id, type: 'response', flags: 0x8180, questions: q.questions, answers });
    return dnsPacket.encode({ id: q.id, type: 'response', flags: 0x8180 | (1 << 9), questions: q.questions, answers: [] });
  }
  return dnsPacket.encode({ id: q.id, type: 'response', flags: 0x8183, questions: q.questions }); // NXDOMAIN
}

const udp = dgram.createSocket('udp4');
udp.on('message', (m, r) => udp.send(upstreamAnswer(decode(m), false), r.port, r.address));
await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
const port = udp.address().port;
const tcpServer = net.createServer((s) => {
  let acc = Buffer.alloc(0);
  s.on('data', (d) => {
    acc = Buffer.concat([acc, d]);
    if (acc.length >= 2 + acc.readUInt16BE(0)) {
      const a = upstreamAnswer(decode(acc.subarray(2)), true);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(a.length);
      s.end(Buffer.concat([len, a]));
    }
  });
});
await new Promise<void>((r) => tcpServer.listen(port, '127.0.0.1', r));
const silent = dgram.createSocket('udp4'); // receives and never answers
await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
t.teardown(() => {
  udp.close();
  tcpServer.close();
  silent.close();
});

const dns = new DnsOverride({
  hosts: new HostPatterns(['api.example.com', '*.corp.example']),
  pool: new FakeIpPool(),
  upstreams: [`127.0.0.1:${port}`],
  timeoutMs: 500,
  ttl: 5,
});
const query = (name: string, type: 'A' | 'AAAA' = 'A', id = 7) =>
  dnsPacket.encode({ id, type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }] });

t.test('a mapped name gets a pool address, the same one twice, with a short TTL', async (t) => {
  const r1 = decode((await dns.answer(query('api.example.com', 'A', 11)))!);
  t.equal(r1.id, 11);
  t.equal(r1.rcode, 'NOERROR');
  t.equal(r1.answers![0].type, 'A');
  const ip = (r1.answers![0] as { data: string }).data;
  t.match(ip, /^198\.1[89]\./);
  t.equal(ttl(r1.answers![0]), 5);
  const r2 = decode((await dns.answer(query('API.example.com')))!);
  t.equal((r2.answers![0] as { data: string }).data, ip);
  const w = decode((await dns.answer(query('x.corp.example')))!);
  t.not((w.answers![0] as { data: string }).data, ip, 'another name, another address');
});

t.test('AAAA for a mapped name: the IPv6 fake with the same index as its A answer', async (t) => {
  const a = decode((await dns.answer(query('api.example.com', 'A')))!);
  const r = decode((await dns.answer(query('api.example.com', 'AAAA')))!);
  t.equal(r.rcode, 'NOERROR');
  t.equal(r.answers!.length, 1);
  t.equal(r.answers![0].type, 'AAAA');
  t.equal(ttl(r.answers![0]), 5);
  const v6 = (r.answers![0] as { data: string }).data;
  t.match(v6, /^fc00:/, 'in fc00::/18');
  const v4 = (a.answers![0] as { data: string }).data;
  const p = dns.opts.pool;
  t.equal(p.fromV6(v6), ipv4ToInt(v4), 'same index as the A answer');
  t.equal(p.nameOf6(v6), 'api.example.com');
  const again = decode((await dns.answer(query('API.Example.com.', 'AAAA')))!);
  t.equal((again.answers![0] as { data: string }).data, v6, 'stable');
  const first = decode((await dns.answer(query('new6.corp.example', 'AAAA')))!);
  const thenA = decode((await dns.answer(query('new6.corp.example', 'A')))!);
  t.equal(p.fromV6((first.answers![0] as { data: string }).data), ipv4ToInt((thenA.answers![0] as { data: string }).data), 'AAAA first, then A: one mapping');
});

t.test('AAAA for a mapped name without an IPv6 pool (--ipv6 off): NODATA', async (t) => {
  const off = new DnsOverride({ hosts: new HostPatterns(['api.example.com']), pool: new FakeIpPool({ cidr6: null }), upstreams: [`127.0.0.1:${port}`], timeoutMs: 500, ttl: 5 });
  const r = decode((await off.answer(query('api.example.com', 'AAAA')))!);
  t.equal(r.rcode, 'NOERROR');
  t.same(r.answers, []);
  t.equal(off.opts.pool.mappings, 0, 'no mapping made for a NODATA answer');
});

t.test('AAAA for other names is forwarded, answered unchanged', async (t) => {
  const q = query('known.test', 'AAAA', 98);
  const raw = (await dns.answer(q))!;
  t.ok(raw.equals(upstreamAnswer(decode(q), false)), 'byte for byte what the upstream said');
});

t.test('other names are forwarded and answered unchanged; NXDOMAIN passes through', async (t) => {
  const q = query('known.test', 'A', 99);
  const raw = (await dns.answer(q))!;
  t.ok(raw.equals(upstreamAnswer(decode(q), false)), 'byte for byte what the upstream said');
  const nx = decode((await dns.answer(query('nowhere.test')))!);
  t.equal(nx.rcode, 'NXDOMAIN');
});

t.test('a truncated answer is passed on; the retry over TCP gets the full one', async (t) => {
  const tc = decode((await dns.answer(query('big.test')))!);
  t.equal(tc.flag_tc, true);
  const full = decode((await dns.answer(query('big.test'), true))!);
  t.equal(full.answers!.length, 40);
});

t.test('malformed queries get FORMERR or nothing, never an exception', async (t) => {
  t.equal(await dns.answer(Buffer.from([1, 2, 3])), null, 'too short for an id: dropped');
  const garbage = Buffer.alloc(40, 0xff);
  garbage.writeUInt16BE(0x0100, 2); // a query header, then nonsense
  const r = await dns.answer(garbage);
  t.equal(r!.readUInt16BE(2) & 0xf, 1, 'FORMERR');
  t.equal(r!.readUInt16BE(0), 0xffff, 'same id');
  let seed = 5;
  let threw = 0;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.alloc(12 + (i % 60));
    for (let k = 0; k < b.length; k++) b[k] = (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    b[2] &= 0x7f; // a query, not a response
    b.writeUInt16BE(0, 4);
    try {
      const out = await new DnsOverride({ ...dns.opts, upstreams: [] }).answer(b);
      if (out && out.length < 12) t.fail('short reply');
    } catch {
      threw++;
    }
  }
  t.equal(threw, 0, '2000 random queries, no exception');
});

t.test('an upstream that never answers gives SERVFAIL after the timeout, and says so (name, type, resolver, reason)', async (t) => {
  const failures: unknown[] = [];
  const up = `127.0.0.1:${silent.address().port}`;
  const d = new DnsOverride({ ...dns.opts, upstreams: [up], timeoutMs: 200, onFailure: (f) => failures.push(f) });
  const r = decode((await d.answer(query('known.test')))!);
  t.equal(r.rcode, 'SERVFAIL');
  t.equal(d.counters.servfail, 1);
  t.same(failures, [{ name: 'known.test', type: 'A', resolvers: [up], reason: `${up}: no answer within 200 ms` }]);
});

t.test('a resolver that refuses (nothing listens) is named with its reason, each resolver tried', async (t) => {
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.1', () => r()));
  const port = closed.address().port;
  closed.close(); // nothing listens there now: the kernel answers port unreachable
  const failures: { reason: string; type: string }[] = [];
  const ups = [`127.0.0.1:${port}`, `127.0.0.1:${silent.address().port}`];
  const d = new DnsOverride({ ...dns.opts, upstreams: ups, timeoutMs: 200, onFailure: (f) => failures.push(f) });
  const q = dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'AAAA', name: 'Other.Test.' }] });
  t.equal(decode((await d.answer(q))!).rcode, 'SERVFAIL');
  t.equal(failures.length, 1);
  t.equal(failures[0].type, 'AAAA');
  t.match(failures[0].reason, new RegExp(`^127\\.0\\.0\\.1:${port}: refused \\(nothing listens there: port unreachable\\); 127\\.0\\.0\\.1:\\d+: no answer within 200 ms$`));
});

t.test('forwarded answers are told to whoever checks destinations: what the gateway told a client', async (t) => {
  const learned: [string, string[], number][] = [];
  const d = new DnsOverride({ ...dns.opts, onAnswer: (n, a, ttl) => learned.push([n, a, ttl]) });
  await d.answer(query('known.test', 'A', 5));
  await d.answer(query('nowhere.test'));
  t.same(learned, [['known.test', ['192.0.2.55'], 60]], 'the addresses and TTL of an answer; nothing for NXDOMAIN');
});

t.test('a full pool whose mappings are all held answers SERVFAIL, counted', async (t) => {
  const pool = new FakeIpPool({ cidr: '198.18.0.0/29', reserved: 1, holdMs: 60_000 });
  const d = new DnsOverride({ ...dns.opts, pool });
  for (let i = 0; i < pool.capacity; i++) t.equal(decode((await d.answer(query(`n${i}.corp.example`)))!).rcode, 'NOERROR');
  t.equal(decode((await d.answer(query('late.corp.example')))!).rcode, 'SERVFAIL');
  t.same(pool.counters, { recycled: 0, exhausted: 1 });
});
