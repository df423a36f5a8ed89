// The proxy core with a fake inbound and a fake dialer, no socket anywhere:
// when it dials and when it answers the client (SYN-ACK only once the upstream
// stands), how a failed dial reaches the client (RST, ICMP unreachable, net
// unreachable), rules that reject, rules that need the client's first bytes
// (sniffing), header edits, the one log line per connection, and a stop.
import t from 'tap';
import { ProxyCore, type ProxyCoreOptions } from '../../../src/proxy/proxy-core.js';
import { Policy } from '../../../src/proxy/policy.js';
import { DialError } from '../../../src/proxy/upstream-dialer.js';
import { cidrMatch } from '../../../src/proxy/rules/cidr-match.js';
import type { Rule } from '../../../src/proxy/rules/rule-types.js';
import type { Endpoint } from '../../../src/net/endpoint.js';
import { FakeInbound, drain, fakeDialer, logSink } from '../../helpers/proxy-fakes.js';

const SERVER: Endpoint = { family: 4, address: '203.0.113.5', port: 80 };

function setup(o: { rules?: Rule[]; fail?: () => Error; core?: Partial<ProxyCoreOptions> } = {}) {
  const order: string[] = [];
  const { dial, dials } = fakeDialer({ fail: o.fail, log: order });
  const { log, lines } = logSink();
  const policy = new Policy(o.rules ?? [], new Map(), new Map());
  const core = new ProxyCore({ log, connectTimeoutMs: 1000, sniffTimeoutMs: 50, policy, openUpstream: dial, ...o.core });
  const connLines = () => lines.filter((l) => l.msg === 'conn');
  /** The connection's log line, once it is written (bounded wait). */
  const lineOf = async (c: FakeInbound) => {
    for (let i = 0; i < 200; i++) {
      const l = connLines().find((x) => x.id === c.id);
      if (l) return l;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no log line for connection ${c.id}: ${JSON.stringify(lines)}`);
  };
  const inbound = (dst: Endpoint = SERVER, opts: ConstructorParameters<typeof FakeInbound>[1] = {}) => new FakeInbound(dst, { log: order, ...opts });
  return { core, dials, lines, connLines, lineOf, order, inbound };
}

const dialError = (kind: DialError['kind'], code: string) => () => new DialError(`connect ${code}`, kind, code);

t.test('no rules: dialled first, accepted after, bytes both ways, one line', async (t) => {
  const s = setup();
  const c = s.inbound();
  s.core.handle(c);
  t.same(c.events, [], 'nothing answered before the upstream stands');
  for (let i = 0; i < 200 && !c.events.includes('accept'); i++) await new Promise((r) => setTimeout(r, 5));
  t.same(s.order.slice(0, 2), ['dial', 'accept'], 'SYN-ACK only once the upstream stands');
  const up = s.dials[0];
  t.same(up.dst, SERVER, 'dialled the original destination');
  const atServer = drain(up.server);
  c.app.end('ping');
  t.same(await atServer, { text: 'ping', end: 'EOF' }, "the client's bytes, then its FIN");
  const atApp = drain(c.app);
  up.server.end('pong!');
  t.same(await atApp, { text: 'pong!', end: 'EOF' });
  const line = await s.lineOf(c);
  t.match(line, { msg: 'conn', inbound: 'tun', src: '192.0.2.10:40000', dst: '203.0.113.5:80', rule: 'default', action: 'direct', up: 4, down: 5, end: 'closed' });
  t.type(line.ms, 'number');
  t.equal(s.connLines().length, 1, 'one line');
  t.match(s.core.counters, { active: 0, total: 1, failed: 0, bytesUp: 4, bytesDown: 5 });
});

t.test('a server that resets: the client is reset too', async (t) => {
  const s = setup();
  const c = s.inbound();
  s.core.handle(c);
  for (let i = 0; i < 200 && !c.events.includes('accept'); i++) await new Promise((r) => setTimeout(r, 5));
  const atApp = drain(c.app);
  c.app.write('hello');
  await new Promise((r) => setTimeout(r, 80)); // past the sniff
  s.dials[0].server.resetAndDestroy();
  t.equal((await atApp).end, 'ECONNRESET');
  t.match(await s.lineOf(c), { end: 'upstream-reset' });
});

t.test('failed dials: how the client is answered, and the line says why', async (t) => {
  const cases: [string, () => Error, string[], string][] = [
    ['refused', dialError('refused', 'ECONNREFUSED'), ['reject:rst'], 'upstream-refused'],
    ['host unreachable', dialError('unreachable', 'EHOSTUNREACH'), ['reject:unreachable'], 'upstream-unreachable'],
    ['no route to the network (no uplink)', dialError('unreachable', 'ENETUNREACH'), ['reject:unreachable:net'], 'upstream-unreachable'],
    ['timeout', dialError('timeout', 'ETIMEDOUT'), ['reject:unreachable'], 'upstream-timeout'],
    ['a name that does not resolve', () => new Error('getaddrinfo ENOTFOUND x.example'), ['reject:unreachable'], 'upstream-unresolved'],
  ];
  for (const [name, fail, events, end] of cases) {
    const s = setup({ fail });
    const c = s.inbound();
    s.core.handle(c);
    const line = await s.lineOf(c);
    t.same(c.events, events, `${name}: ${events.join(', ')}, never accepted`);
    t.match(line, { end, rule: 'default' }, `${name}: ${end}`);
    t.type(line.error, 'string', `${name}: with the error`);
    t.match(s.core.counters, { failed: 1, active: 0 });
  }
  // a server that accepted and reset before the connect was seen: a connection, then a RST
  const s = setup({ fail: dialError('error', 'ECONNRESET') });
  const c = s.inbound();
  const atApp = drain(c.app);
  s.core.handle(c);
  t.same((await atApp).end, 'ECONNRESET', 'ECONNRESET while dialling: accepted, then reset');
  t.same(c.events, ['accept']);
});

t.test('reject rules: forbidden without a word, or 403 to HTTP on the TUN', async (t) => {
  const rules: Rule[] = [{ index: 0, name: 'no-smtp', match: { port: [{ from: 25, to: 25 }] }, action: { type: 'reject' } }];
  const SMTP: Endpoint = { ...SERVER, port: 25 };
  {
    const s = setup({ rules, core: { httpInspect: false } });
    const c = s.inbound(SMTP);
    s.core.handle(c);
    t.match(await s.lineOf(c), { rule: 'no-smtp', action: 'reject', end: 'rejected' });
    t.same(c.events, ['reject:forbidden'], 'refused, not accepted');
    t.equal(s.dials.length, 0, 'nothing dialled');
    t.equal(s.core.counters.rejected, 1);
  }
  {
    const s = setup({ rules });
    const c = s.inbound(SMTP, { inbound: 'socks5' });
    s.core.handle(c);
    await s.lineOf(c);
    t.same(c.events, ['reject:forbidden'], 'an explicit proxy refuses in its own terms');
  }
  {
    const s = setup({ rules });
    const c = s.inbound(SMTP);
    const atApp = drain(c.app);
    c.app.write('GET / HTTP/1.1\r\nHost: mail.example\r\n\r\n');
    s.core.handle(c);
    const got = await atApp;
    t.match(got.text, /^HTTP\/1\.1 403 /, 'an HTTP client on the TUN is told why');
    t.match(got.text, /no-smtp/, 'naming the rule');
    t.match(await s.lineOf(c), { end: 'rejected', proto: 'http', host: 'mail.example' });
  }
  {
    const s = setup({ rules });
    const c = s.inbound(SMTP);
    const atApp = drain(c.app);
    c.app.write('EHLO x\r\n');
    s.core.handle(c);
    t.equal((await atApp).end, 'ECONNRESET', 'anything else is reset');
  }
});

t.test('name rules: the client is accepted first, its bytes sniffed, then decided', async (t) => {
  const rules: Rule[] = [
    { index: 0, name: 'blocked', match: { domain: ['blocked.example'] }, action: { type: 'reject' } },
    { index: 1, name: 'strip', match: { cidr: [cidrMatch('203.0.113.0/24')!] }, action: { type: 'remove-header', header: 'X-Drop' } },
  ];
  {
    const s = setup({ rules });
    const c = s.inbound();
    const atApp = drain(c.app);
    c.app.write('GET / HTTP/1.1\r\nHost: blocked.example\r\n\r\n');
    s.core.handle(c);
    t.match((await atApp).text, /^HTTP\/1\.1 403 /);
    t.same(s.order, ['accept'], 'accepted to read the name; never dialled');
    t.match(await s.lineOf(c), { rule: 'blocked', action: 'reject', host: 'blocked.example', proto: 'http', end: 'rejected' });
  }
  {
    const s = setup({ rules });
    const c = s.inbound();
    c.app.write('GET /x HTTP/1.1\r\nHost: ok.example\r\nX-Drop: secret\r\nX-Keep: 1\r\n\r\n');
    s.core.handle(c);
    for (let i = 0; i < 200 && !s.dials.length; i++) await new Promise((r) => setTimeout(r, 5));
    t.same(s.order, ['accept', 'dial'], 'decided on the sniffed Host, then dialled');
    const up = s.dials[0];
    const atServer = drain(up.server);
    await new Promise((r) => setTimeout(r, 50));
    const atApp = drain(c.app);
    up.server.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    c.app.end();
    const seen = (await atServer).text;
    t.match(seen, /^GET \/x HTTP\/1\.1\r\n/, 'the request went on');
    t.notMatch(seen, /X-Drop/i, 'the rule removed the header');
    t.match(seen, /X-Keep: 1/, 'and kept the others');
    t.match((await atApp).text, /^HTTP\/1\.1 200 OK/);
    const http = await (async () => {
      for (let i = 0; i < 100; i++) {
        const l = s.lines.find((x) => x.msg === 'http');
        if (l) return l;
        await new Promise((r) => setTimeout(r, 10));
      }
      return null;
    })();
    t.match(http, { method: 'GET', host: 'ok.example', path: '/x', status: 200, rule: 'strip' }, 'a line per request');
    t.match(await s.lineOf(c), { rule: 'strip', action: 'remove-header', proto: 'http', host: 'ok.example' });
    t.equal(s.core.counters.httpRequests, 1);
  }
});

t.test('a sniff only the log wants: the first bytes decide, a short first message is not held', async (t) => {
  // no rule reads names or headers: "x" (which could still begin a method) goes on at once, not after the 10 s budget
  const s = setup({ core: { sniffTimeoutMs: 10_000 } });
  const c = s.inbound();
  s.core.handle(c);
  for (let i = 0; i < 200 && !s.dials.length; i++) await new Promise((r) => setTimeout(r, 5));
  const up = s.dials[0];
  c.app.write('x');
  const first = await Promise.race([
    new Promise<string>((r) => up.server.once('data', (d: Buffer) => r(String(d)))),
    new Promise<string>((r) => setTimeout(() => r('held'), 2000)),
  ]);
  t.equal(first, 'x', 'the byte reached the server within 2 s');
  const atApp = drain(c.app);
  up.server.end('y');
  c.app.end();
  t.same(await atApp, { text: 'y', end: 'EOF' });
  t.match(await s.lineOf(c), { proto: 'unknown', end: 'closed' });

  // a header rule reads every request: the same byte waits for more (the budget, 300 ms here)
  const rules: Rule[] = [{ index: 0, name: 'strip', match: { cidr: [cidrMatch('203.0.113.0/24')!] }, action: { type: 'remove-header', header: 'X-Drop' } }];
  const h = setup({ rules, core: { sniffTimeoutMs: 300 } });
  const c2 = h.inbound();
  c2.app.on('error', () => {}); // the refusal resets it
  h.core.handle(c2);
  for (let i = 0; i < 200 && !h.dials.length; i++) await new Promise((r) => setTimeout(r, 5));
  const up2 = h.dials[0];
  const t0 = Date.now();
  c2.app.write('x');
  let early = false;
  up2.server.once('data', () => (early = Date.now() - t0 < 150));
  const line = await h.lineOf(c2);
  t.notOk(early, 'not passed on before the budget');
  t.match(line, { end: 'header-rule-not-applicable' }, 'then refused: the rule cannot be applied to an unknown stream');
});

t.test('a fake IP: a stale one is reset; its name is what is dialled', async (t) => {
  const core = { isFakeAddress: (a: string) => a.startsWith('198.18.') };
  const FAKE: Endpoint = { family: 4, address: '198.18.0.9', port: 443 };
  {
    const s = setup({ core });
    const c = s.inbound(FAKE);
    s.core.handle(c);
    t.match(await s.lineOf(c), { end: 'stale-fake-ip' });
    t.same(c.events, ['reject:rst'], 'a fake IP no longer mapped is refused');
    t.equal(s.dials.length, 0);
  }
  {
    const s = setup({ core });
    const c = s.inbound(FAKE, { hostname: 'app.example' });
    s.core.handle(c);
    for (let i = 0; i < 200 && !s.dials.length; i++) await new Promise((r) => setTimeout(r, 5));
    t.equal(s.dials[0].hostname, 'app.example', 'the dialer is given the name');
    s.core.finishAll('gateway-stop');
    t.match(await s.lineOf(c), { host: 'app.example', end: 'gateway-stop' });
  }
});

t.test('a stop writes the line of every open connection, once', async (t) => {
  const s = setup();
  const a = s.inbound();
  const b = s.inbound();
  s.core.handle(a);
  s.core.handle(b);
  for (let i = 0; i < 200 && s.dials.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  s.core.finishAll('gateway-stop');
  t.same(
    s
      .connLines()
      .map((l) => [l.id, l.end])
      .sort(),
    [
      [a.id, 'gateway-stop'],
      [b.id, 'gateway-stop'],
    ].sort(),
  );
  for (const d of s.dials) d.server.destroy();
  a.app.destroy();
  b.app.destroy();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(s.connLines().length, 2, 'what the connections do afterwards logs nothing more');
  t.equal(s.core.counters.active, 0);
});

t.test('DNS over TCP to the gateway: answered in place, never dialled', async (t) => {
  const query = Buffer.from('a query');
  const s = setup({ core: { dnsOverTcp: { address: '*', answer: async (q) => Buffer.concat([Buffer.from('answer to '), q]) } } });
  const c = s.inbound({ ...SERVER, port: 53 });
  const atApp = drain(c.app);
  s.core.handle(c);
  const framed = Buffer.alloc(2 + query.length);
  framed.writeUInt16BE(query.length);
  query.copy(framed, 2);
  c.app.end(framed);
  const got = await atApp;
  t.equal(got.text.slice(2), 'answer to a query', 'length-framed answer');
  t.equal(s.dials.length, 0);
  t.match(await s.lineOf(c), { action: 'dns', end: 'closed' });
});

t.test("DNS over TCP to the gateway: idle past the core's idleMs, closed, and the line says so", async (t) => {
  const s = setup({ core: { dnsOverTcp: { address: '*', idleMs: 50, answer: async () => null } } });
  const c = s.inbound({ ...SERVER, port: 53 });
  const keep = setInterval(() => {}, 1000); // the idle timer is unref'd
  t.teardown(() => clearInterval(keep));
  const atApp = drain(c.app);
  s.core.handle(c);
  t.equal((await atApp).end, 'EOF', 'the gateway ended it');
  c.app.end();
  t.match(await s.lineOf(c), { action: 'dns', end: 'idle-timeout' });
  t.equal(s.core.counters.active, 0);
});
