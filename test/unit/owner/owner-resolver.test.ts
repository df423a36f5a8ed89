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
