// Who made a connection, against the real kernel on loopback: sock_diag
// finds the client socket's uid, /proc the process holding it (this test's
// own), a socket that is gone is no owner, and a second connection from the
// same socket's process is found with the pids tried first.
import t from 'tap';
import net from 'node:net';
import { realpathSync } from 'node:fs';
import { SockDiag } from '../../../src/owner/sock-diag.js';
import { OwnerResolver } from '../../../src/owner/owner-resolver.js';
import { ownerFields } from '../../../src/proxy/owner-lookup.js';

async function pair(host: string): Promise<{ client: net.Socket; port: number; close: () => void }> {
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => server.listen(0, host, r));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, host);
  await new Promise((r) => client.once('connect', r));
  return { client, port, close: () => (client.destroy(), server.close()) };
}

const ep = (address: string, port: number) => ({ family: (address.includes(':') ? 6 : 4) as 4 | 6, address, port });

t.test('sock_diag: the uid of a TCP client socket, IPv4 and IPv6', async (t) => {
  const d = new SockDiag();
  t.teardown(() => d.close());
  for (const host of ['127.0.0.1', '::1']) {
    const p = await pair(host);
    const found = d.lookup('tcp', { local: { address: host, port: p.client.localPort! }, remote: { address: host, port: p.port } });
    t.equal(typeof found, 'object', `${host}: found`);
    if (typeof found === 'object') {
      t.equal(found.uid, process.getuid!(), `${host}: our uid`);
      t.ok(found.inode > 0);
    }
    t.equal(d.lookup('tcp', { local: { address: host, port: 9 }, remote: { address: host, port: p.port } }), 'no-socket', `${host}: no such socket`);
    p.close();
  }
  t.equal(d.lookup('tcp', { local: { address: 'nope', port: 1 }, remote: { address: '127.0.0.1', port: 1 } }), 'not-an-address');
});

t.test('sock_diag: a UDP socket, by its local end', async (t) => {
  const dgram = await import('node:dgram');
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  const d = new SockDiag();
  t.teardown(() => (d.close(), s.close()));
  const found = d.lookup('udp', { local: { address: '127.0.0.1', port }, remote: { address: '127.0.0.1', port: 5353 } });
  t.equal(typeof found === 'object' && found.uid, process.getuid!());
});

t.test('sock_diag UDP: wildcard-bound and connected sockets, IPv4 and IPv6; a dual-stack socket answers for IPv4', async (t) => {
  const dgram = await import('node:dgram');
  const d = new SockDiag();
  t.teardown(() => d.close());
  const open = async (type: 'udp4' | 'udp6', bind: string, connect?: [string, number]) => {
    const s = dgram.createSocket(type);
    await new Promise<void>((r) => s.bind(0, bind, r));
    if (connect) await new Promise<void>((r) => s.connect(connect[1], connect[0], r));
    t.teardown(() => s.close());
    return s.address().port;
  };
  const cases = [
    { name: 'v4 wildcard, unconnected', type: 'udp4', bind: '0.0.0.0', local: '127.0.0.1', remote: '198.51.100.9', wildcard: true },
    { name: 'v4 wildcard, connected', type: 'udp4', bind: '0.0.0.0', local: '127.0.0.1', remote: '127.0.0.5', connect: true, wildcard: false },
    { name: 'v6 wildcard, unconnected', type: 'udp6', bind: '::', local: '::1', remote: '2001:db8::9', wildcard: true },
    { name: 'v6 wildcard, connected', type: 'udp6', bind: '::', local: '::1', remote: '::1', connect: true, wildcard: false },
    { name: 'dual-stack, an IPv4 flow', type: 'udp6', bind: '::', local: '127.0.0.1', remote: '198.51.100.9', wildcard: true },
  ] as const;
  for (const c of cases) {
    const port = await open(c.type, c.bind, 'connect' in c ? [c.remote, 5353] : undefined);
    const found = d.lookup('udp', { local: { address: c.local, port }, remote: { address: c.remote, port: 5353 } });
    t.match(found, { uid: process.getuid!() }, `${c.name}: found`);
    t.equal(typeof found === 'object' && found.wildcard === true, c.wildcard, `${c.name}: wildcard ${c.wildcard}`);
  }
});

t.test("a forwarded flow is nobody's, though a local socket has its source port", async (t) => {
  const dgram = await import('node:dgram');
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '0.0.0.0', r));
  const port = s.address().port;
  const r = new OwnerResolver();
  t.teardown(() => (r.close(), s.close()));
  // the kernel matches an unconnected wildcard socket on the port alone, whatever the source address
  const d = new SockDiag();
  t.match(d.lookup('udp', { local: { address: '198.51.100.2', port }, remote: { address: '203.0.113.30', port: 5300 } }), { wildcard: true });
  d.close();
  const forwarded = await r.lookup('udp', ep('198.51.100.2', port), ep('203.0.113.30', 5300), 1);
  t.match(forwarded, { owner: null, why: /forwarded from another host/ }, 'not the local socket: its source is no address here');
  t.match(await r.lookup('udp', ep('127.0.0.1', port), ep('203.0.113.30', 5300), 1), { owner: { uid: process.getuid!() } }, 'from a local address: the socket');

  // TCP: a listener answers for any source on its port; it is never a client socket
  const server = net.createServer();
  await new Promise<void>((res) => server.listen(0, '0.0.0.0', res));
  t.teardown(() => server.close());
  const lport = (server.address() as net.AddressInfo).port;
  t.match(await r.lookup('tcp', ep('198.51.100.2', lport), ep('203.0.113.30', 80), 1), { owner: null }, 'a forwarded connection from the listening port: no owner');
});

t.test('the resolver: uid only, then the process; cached by inode; a closed socket has no owner', async (t) => {
  const r = new OwnerResolver();
  t.teardown(() => r.close());
  const p = await pair('127.0.0.1');
  const src = ep('127.0.0.1', p.client.localPort!);
  const dst = ep('127.0.0.1', p.port);
  const uidOnly = await r.lookup('tcp', src, dst, 1);
  t.same(uidOnly, { owner: { uid: process.getuid!() } }, 'need 1: no /proc search');
  t.equal(r.counters.owner_process_searches, 0);
  const full = await r.lookup('tcp', src, dst, 2);
  t.equal(full.owner?.pid, process.pid, 'this process holds it');
  t.equal(full.owner?.exe, realpathSync(process.execPath));
  t.equal(full.owner?.comm, 'node');
  await r.lookup('tcp', src, dst, 2);
  t.equal(r.counters.owner_process_searches, 1, 'the second time from the cache');
  t.equal(r.counters.owner_cache_hits, 1);
  p.close();
  await new Promise((res) => setTimeout(res, 50));
  const gone = await r.lookup('tcp', src, dst, 2);
  t.equal(gone.owner, null);
  t.match(gone.why, /no socket on this host|the socket is closed/);
  t.same(ownerFields(gone), { owner: null, owner_why: gone.why }, 'the log line says why');
  t.same(ownerFields(full), { owner: { uid: process.getuid!(), pid: process.pid, exe: full.owner!.exe, comm: 'node' } });
});
