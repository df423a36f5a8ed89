// boundSocket: bound to the address without a port until connect(), then a
// plain connected socket (data both ways, half-close), and the bind's errors.
import t from 'tap';
import net from 'node:net';
import { boundSocket } from '../../../src/proxy/upstream-socket.js';

const server = net.createServer({ allowHalfOpen: true }, (s) => {
  const got: Buffer[] = [];
  s.on('data', (d) => got.push(d));
  s.on('end', () => s.end(`echo:${Buffer.concat(got).toString()}`));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
t.teardown(() => server.close());
const port = (server.address() as net.AddressInfo).port;

t.test('bound to the address, no port taken before connect', async (t) => {
  const s = boundSocket('127.0.0.1', 4);
  if (!s) return void t.pass('the native addon is not built here: nothing to check');
  const before = s.address() as net.AddressInfo;
  t.equal(before.address, '127.0.0.1', 'the source address is set at once');
  t.equal(before.port, 0, 'the port is left to connect()');
  s.connect({ host: '127.0.0.1', port });
  await new Promise((r) => s.once('connect', r));
  t.equal(s.localAddress, '127.0.0.1');
  t.not(s.localPort, 0, 'connect() chose a port');
  s.end('ping');
  let reply = '';
  s.on('data', (d: Buffer) => (reply += d.toString()));
  await new Promise((r) => s.once('end', r));
  t.equal(reply, 'echo:ping', 'data both ways, with a half-close in between');
  s.destroy();
});

t.test('a refused connect is an error event, as with net.connect', async (t) => {
  const s = boundSocket('127.0.0.1', 4);
  if (!s) return void t.pass('the native addon is not built here: nothing to check');
  s.connect({ host: '127.0.0.1', port: 1 });
  const err = await new Promise<NodeJS.ErrnoException>((r) => s.once('error', r));
  t.equal(err.code, 'ECONNREFUSED');
});

t.test("an address that is not this host's throws EADDRNOTAVAIL; a bad family or address is a TypeError/RangeError", async (t) => {
  const probe = boundSocket('127.0.0.1', 4);
  if (!probe) return void t.pass('the native addon is not built here: nothing to check');
  probe.destroy();
  t.throws(() => boundSocket('192.0.2.77', 4), { code: 'EADDRNOTAVAIL' });
  t.throws(() => boundSocket('not an address', 4), TypeError);
  t.throws(() => boundSocket('127.0.0.1', 5 as 4), RangeError);
});
