// The proxy core and the owner: asked once per connection, only when a rule
// reading it could match; a found owner decides and is in the line; no owner
// matches no user rule, and the line says why. A loopback server stands in
// for the destination; the owner lookup is a stub.
import t from 'tap';
import net from 'node:net';
import { Duplex, Writable } from 'node:stream';
import { pino } from 'pino';
import { ProxyCore } from '../../../src/proxy/proxy-core.js';
import { Policy } from '../../../src/proxy/policy.js';
import type { InboundConnection, RejectHow } from '../../../src/proxy/inbound.js';
import type { OwnerAnswer, OwnerLookup } from '../../../src/proxy/owner-lookup.js';
import type { Rule } from '../../../src/proxy/rules/rule-types.js';

const server = net.createServer((s) => s.end());
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
t.teardown(() => server.close());
const port = (server.address() as net.AddressInfo).port;

const rules: Rule[] = [
  { index: 0, match: { user: [{ from: 1000, to: 1000 }], port: [{ from: port, to: port }] }, action: { type: 'reject' } },
  { index: 1, match: { port: [{ from: 1, to: 1 }], process: [{ name: 'curl' }] }, action: { type: 'reject' } },
];

function setup(answer: OwnerAnswer) {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  const asked: number[] = [];
  const owners: OwnerLookup = { lookup: async (_p, _s, _d, need) => (asked.push(need), answer) };
  const core = new ProxyCore({ log, connectTimeoutMs: 2000, policy: new Policy(rules, new Map(), new Map()), owners, httpInspect: false });
  return { core, lines, asked };
}

function conn(dstPort: number): InboundConnection & { rejected: RejectHow[] } {
  const rejected: RejectHow[] = [];
  return {
    id: 1,
    inbound: 'tun',
    protocol: 'tcp',
    src: { family: 4, address: '192.0.2.50', port: 40000 },
    dst: { family: 4, address: '127.0.0.1', port: dstPort },
    rejected,
    accept: () =>
      new Duplex({
        read() {
          this.push(null);
        },
        write: (_c, _e, cb) => cb(),
      }),
    reject: (how) => void rejected.push(how),
    counters: () => ({ up: 0, down: 0 }),
  };
}

async function lineOf(lines: Record<string, unknown>[]): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200 && !lines.some((l) => l.msg === 'conn'); i++) await new Promise((r) => setTimeout(r, 10));
  return lines.find((l) => l.msg === 'conn')!;
}

t.test('a found owner decides, and is in the line', async (t) => {
  const { core, lines, asked } = setup({ owner: { uid: 1000, pid: 7, exe: '/usr/bin/curl', comm: 'curl' } });
  const c = conn(port);
  core.handle(c);
  const line = await lineOf(lines);
  t.same(asked, [1], 'asked once, for the uid only (the process rule cannot match this port)');
  t.same(c.rejected, ['forbidden']);
  t.match(line, { action: 'reject', rule: 'rules[0]', owner: { uid: 1000, pid: 7, exe: '/usr/bin/curl' } });
});

t.test('no owner: the user rule does not match, and the line says why', async (t) => {
  const { core, lines } = setup({ owner: null, why: 'no socket on this host has this address pair' });
  const c = conn(port);
  core.handle(c);
  const line = await lineOf(lines);
  t.same(c.rejected, [], 'not rejected');
  t.match(line, { action: 'direct', owner: null, owner_why: /no socket/ });
});

t.test('a connection no owner rule could match is not looked up', async (t) => {
  const other = net.createServer((s) => s.end());
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  t.teardown(() => other.close());
  const { core, lines, asked } = setup({ owner: { uid: 1000 } });
  core.handle(conn((other.address() as net.AddressInfo).port));
  const line = await lineOf(lines);
  t.same(asked, [], 'no lookup');
  t.notOk('owner' in line, 'and no owner in the line');
  t.equal(line.action, 'direct');
});
