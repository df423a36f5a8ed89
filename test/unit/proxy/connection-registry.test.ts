// The proxy core's live connections, through the explicit proxy on loopback
// (kernel sockets both sides): listed with their rule and bytes while open,
// closed from outside (the client reads ECONNRESET, the server sees its
// connection end), logged as closed by the control API; and reconfigure():
// an open connection keeps the decision it was made with, the next one
// follows the new rules. Entries closed before their handshake or their
// upstream stand are refused and dropped when those arrive.
import t, { type Test } from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { ProxyCore } from '../../../src/proxy/proxy-core.js';
import { ExplicitProxy } from '../../../src/proxy/explicit-proxy.js';
import { ConnectionRegistry } from '../../../src/proxy/connection-registry.js';
import { policyFromConfig } from '../../../src/config/build-policy.js';
import type { InboundConnection } from '../../../src/proxy/inbound.js';

async function echoServer(t: Test) {
  const ends: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', (e: NodeJS.ErrnoException) => ends.push(e.code ?? 'error'));
    s.on('end', () => ends.push('end'));
    s.on('close', () => ends.push('close'));
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, ends };
}

async function proxied(proxyPort: number, port: number): Promise<{ sock: net.Socket; status: string }> {
  const sock = net.connect(proxyPort, '127.0.0.1');
  sock.on('error', () => {});
  await once(sock, 'connect');
  sock.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const [head] = (await once(sock, 'data')) as [Buffer];
  return { sock, status: head.toString().split('\r\n')[0] };
}

async function echo(sock: net.Socket, text: string): Promise<string> {
  sock.write(text);
  const [d] = (await once(sock, 'data')) as [Buffer];
  return d.toString();
}

function core(t: Test, port: number, action: 'direct' | 'reject') {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const policyFor = (a: 'direct' | 'reject') => policyFromConfig({ rules: [{ name: 'echo', cidr: ['127.0.0.1/32'], port: [port], action: a }] }, {});
  const c = new ProxyCore({ log, connectTimeoutMs: 2000, policy: policyFor(action) });
  return { core: c, lines, policyFor };
}

t.test('listed while open, closed from outside: the client is reset, the server sees its end', async (t) => {
  const upstream = await echoServer(t);
  const { core: c, lines } = core(t, upstream.port, 'direct');
  const proxy = new ExplicitProxy(c);
  const at = await proxy.listen('127.0.0.1', 0);
  t.teardown(() => proxy.close());
  const { sock, status } = await proxied(at.port, upstream.port);
  t.equal(status, 'HTTP/1.1 200 Connection established');
  t.equal(await echo(sock, 'hello'), 'hello');
  const [info] = c.connections.list();
  t.match(info, { inbound: 'http-proxy', dst: `127.0.0.1:${upstream.port}`, rule: 'echo', action: 'direct', up: Number, down: Number });
  t.ok(info.up >= 5 && info.down >= 5, `its bytes so far (${info.up} up, ${info.down} down)`);
  t.ok(Date.now() - info.start < 5000, 'its start time');
  const open = c.connections.openBytes();
  t.ok(open.up >= 5, 'open bytes counted');

  const ended = new Promise<string>((r) => {
    sock.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
    sock.on('end', () => r('EOF'));
  });
  t.ok(c.connections.close(info.id), 'close finds it');
  t.equal(await ended, 'ECONNRESET', 'the client is reset, not ended');
  for (let i = 0; i < 50 && !upstream.ends.includes('close'); i++) await new Promise((r) => setTimeout(r, 10));
  t.ok(upstream.ends.includes('close'), `the upstream was closed (${upstream.ends.join(', ')})`);
  for (let i = 0; i < 50 && !lines.some((l) => l.msg === 'conn'); i++) await new Promise((r) => setTimeout(r, 10));
  t.match(
    lines.find((l) => l.msg === 'conn'),
    { rule: 'echo', end: 'closed-by-control' },
  );
  t.same(c.connections.list(), [], 'gone from the list');
  t.notOk(c.connections.close(info.id), 'closing it again finds nothing');
});

t.test('reconfigure: the open connection keeps its decision, the next follows the new rules', async (t) => {
  const upstream = await echoServer(t);
  const { core: c, policyFor } = core(t, upstream.port, 'direct');
  const proxy = new ExplicitProxy(c);
  const at = await proxy.listen('127.0.0.1', 0);
  t.teardown(() => proxy.close());
  const first = await proxied(at.port, upstream.port);
  t.equal(await echo(first.sock, 'one'), 'one');
  const before = c.settings;
  c.reconfigure({ ...before, policy: policyFor('reject'), connectTimeoutMs: 1234 });
  t.equal(c.settings.connectTimeoutMs, 1234);
  t.equal(await echo(first.sock, 'still'), 'still', 'the open connection goes on');
  const second = await proxied(at.port, upstream.port);
  t.equal(second.status, 'HTTP/1.1 403 Forbidden', 'a new one is rejected by the new rules');
  t.equal(c.connections.list().length, 1);
  c.reconfigure({ ...before, policy: policyFor('direct') });
  const third = await proxied(at.port, upstream.port);
  t.equal(third.status, 'HTTP/1.1 200 Connection established', 'and let through again after the next');
  t.equal(c.connections.closeAll(), 2, 'closeAll closes the open ones');
  first.sock.destroy();
  third.sock.destroy();
  second.sock.destroy();
});

t.test('closed before the handshake or the upstream: refused, and the upstream dropped when it comes', async (t) => {
  const calls: string[] = [];
  const fake: InboundConnection = {
    id: 42,
    inbound: 'tun',
    protocol: 'tcp',
    src: { family: 4, address: '10.0.0.2', port: 1 },
    dst: { family: 4, address: '203.0.113.1', port: 80 },
    accept() {
      calls.push('accept');
      throw new Error('client connection already gone');
    },
    reject(how) {
      calls.push(`reject ${how}`);
    },
    counters: () => ({ up: 0, down: 0 }),
  };
  const reg = new ConnectionRegistry();
  const tracked = reg.track(fake, { src: '10.0.0.2:1', dst: '203.0.113.1:80', rule: 'default', action: 'direct' });
  t.same(
    reg.list().map((c) => c.id),
    [42],
  );
  t.ok(reg.close(42));
  t.same(calls, ['reject rst'], 'a client still in its handshake gets a RST');
  const upstream = new net.Socket();
  let destroyed = false;
  upstream.destroy = () => ((destroyed = true), upstream);
  tracked.attach(upstream);
  t.ok(destroyed, 'an upstream that stands after the close is closed at once');
  reg.forget(tracked);
  t.equal(reg.size, 0);
});
