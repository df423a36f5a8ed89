// A SOCKS5 UDP association against a small in-process SOCKS5 server on
// loopback: the handshake (no auth and RFC 1929 username/password), the
// relay the reply names, datagrams both ways behind their header, replies
// from another source or in fragments dropped, a refusal's reason, and the
// association and its control connection ending together.
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { Socks5UdpAssociation } from '../../../../src/proxy/socks5/udp-association.js';
import { udpHeaderFor } from '../../../../src/proxy/socks5/udp-header.js';
import { fakeSocks } from '../../../helpers/fake-socks5-udp.js';
import { DialError } from '../../../../src/proxy/upstream-dialer.js';

t.setTimeout(20_000);

const proxy = (port: number, auth?: [string, string]) => ({
  name: 'fake',
  type: 'socks5' as const,
  host: '127.0.0.1',
  port,
  ...(auth ? { username: auth[0], password: auth[1] } : {}),
});
function events() {
  const got: Buffer[] = [];
  const drops: string[] = [];
  const ends: string[] = [];
  let wake = () => {};
  return {
    got,
    drops,
    ends,
    next: () => new Promise<void>((r) => (wake = r)),
    e: { onMessage: (d: Buffer) => (got.push(Buffer.from(d)), wake()), onDrop: (w: string) => (drops.push(w), wake()), onEnd: (w: string) => (ends.push(w), wake()) },
  };
}

t.test('datagrams both ways, byte for byte; the relay is the proxy when it names all zeros', async (t) => {
  const fake = await fakeSocks(t);
  const ev = events();
  const a = await Socks5UdpAssociation.open(proxy(fake.port), { host: '192.0.2.7', port: 5353 }, { timeoutMs: 2000 }, ev.e);
  t.same(a.relay.host, '127.0.0.1');
  const payload = Buffer.from([0, 1, 2, 253, 254, 255]);
  let n = ev.next();
  a.send(payload);
  await n;
  t.same(ev.got, [payload]);
  // a reply from another address, then a fragment: both dropped and said why
  fake.answer = (d) => Buffer.concat([udpHeaderFor('192.0.2.8', 5353), d]);
  n = ev.next();
  a.send(payload);
  await n;
  fake.answer = (d, dst) => {
    const h = udpHeaderFor(dst.host, dst.port);
    h[2] = 1;
    return Buffer.concat([h, d]);
  };
  n = ev.next();
  a.send(payload);
  await n;
  t.same(ev.drops, ['other-source', 'fragment']);
  t.equal(ev.got.length, 1);
  a.close();
  await new Promise((r) => setTimeout(r, 50));
  t.ok(fake.controls[0].destroyed || fake.controls[0].readableEnded, 'closing the association closed the control connection');
  t.same(ev.ends, [], 'close() is not an end by itself');
});

t.test('a name goes to the proxy as the name; its replies come from whatever address it resolved', async (t) => {
  const fake = await fakeSocks(t);
  let asked = '';
  fake.answer = (d, dst) => ((asked = dst.host), Buffer.concat([udpHeaderFor('198.51.100.9', dst.port), d]));
  const ev = events();
  const a = await Socks5UdpAssociation.open(proxy(fake.port), { host: 'game.example', port: 27015 }, { timeoutMs: 2000 }, ev.e);
  const n = ev.next();
  a.send(Buffer.from('hi'));
  await n;
  t.equal(asked, 'game.example');
  t.same(ev.got.map(String), ['hi']);
  a.close();
});

t.test('username and password (RFC 1929); wrong ones refused', async (t) => {
  const fake = await fakeSocks(t, { auth: ['u1', 'pw'] });
  const a = await Socks5UdpAssociation.open(proxy(fake.port, ['u1', 'pw']), { host: '192.0.2.7', port: 9 }, { timeoutMs: 2000 }, events().e);
  a.close();
  await t.rejects(Socks5UdpAssociation.open(proxy(fake.port, ['u1', 'nope']), { host: '192.0.2.7', port: 9 }, { timeoutMs: 2000 }, events().e), /authentication failed/);
  t.same(fake.authSeen, ['u1:pw', 'u1:nope']);
  await t.rejects(Socks5UdpAssociation.open(proxy(fake.port), { host: '192.0.2.7', port: 9 }, { timeoutMs: 2000 }, events().e), /none of our authentication methods/);
});

t.test('a refusal says why; nothing listening is refused; the proxy closing the control connection ends the association', async (t) => {
  const refusing = await fakeSocks(t, { refuse: 2 });
  const e = await Socks5UdpAssociation.open(proxy(refusing.port), { host: '192.0.2.7', port: 9 }, { timeoutMs: 2000 }, events().e).catch((x: unknown) => x);
  t.ok(e instanceof DialError);
  t.match((e as Error).message, /UDP ASSOCIATE refused: connection not allowed by ruleset/);
  const closed = net.createServer().listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const port = (closed.address() as net.AddressInfo).port;
  closed.close();
  const refused = await Socks5UdpAssociation.open(proxy(port), { host: '192.0.2.7', port: 9 }, { timeoutMs: 2000 }, events().e).catch((x: unknown) => x);
  t.ok(refused instanceof DialError, 'a closed port: a dial error');
  t.equal((refused as DialError).kind, 'refused');
  const fake = await fakeSocks(t);
  const ev = events();
  await Socks5UdpAssociation.open(proxy(fake.port), { host: '192.0.2.7', port: 9 }, { timeoutMs: 2000 }, ev.e);
  const n = ev.next();
  fake.controls[0].end();
  await n;
  t.same(ev.ends, ['proxy-closed']);
});
