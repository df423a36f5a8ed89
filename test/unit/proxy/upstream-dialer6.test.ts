// Upstream dials pick their source address by the destination's family.
import t from 'tap';
import net from 'node:net';
import { dialDirect, DialError, localAddressFor } from '../../../src/proxy/upstream-dialer.js';

const listen = (host: string) =>
  new Promise<net.Server>((resolve) => {
    const s = net.createServer((c) => c.end());
    s.listen(0, host, () => resolve(s));
  });

t.test('localAddressFor: by family; a name goes with IPv4', async (t) => {
  const o = { localAddress: '192.0.2.1', localAddress6: '2001:db8::1' };
  t.equal(localAddressFor({ family: 4, address: '203.0.113.1', port: 1 }, o), '192.0.2.1');
  t.equal(localAddressFor({ family: 6, address: '2001:db8::9', port: 1 }, o), '2001:db8::1');
  t.equal(localAddressFor({ family: 4, address: 'example.com', port: 1 }, o), '192.0.2.1');
  t.equal(localAddressFor({ family: 6, address: '::1', port: 1 }, { localAddress: '192.0.2.1' }), undefined, 'no IPv6 address: the kernel chooses');
});

t.test('IPv6 destinations bind localAddress6, IPv4 ones localAddress', async (t) => {
  const s6 = await listen('::1');
  const s4 = await listen('127.0.0.1');
  t.teardown(() => {
    s6.close();
    s4.close();
  });
  const opts = { localAddress: '127.0.0.1', localAddress6: '::1', timeoutMs: 2000 };
  const a = await dialDirect({ family: 6, address: '::1', port: (s6.address() as net.AddressInfo).port }, opts);
  t.equal(a.localAddress, '::1');
  a.destroy();
  const b = await dialDirect({ family: 4, address: '127.0.0.1', port: (s4.address() as net.AddressInfo).port }, opts);
  t.equal(b.localAddress, '127.0.0.1');
  b.destroy();
});

t.test('no IPv6 uplink (localAddress6 null): IPv6 dials are refused at once, IPv4 ones go on', async (t) => {
  const s4 = await listen('127.0.0.1');
  t.teardown(() => s4.close());
  const t0 = performance.now();
  const err = await dialDirect({ family: 6, address: '::1', port: 9 }, { localAddress6: null, timeoutMs: 5000 }).catch((e: unknown) => e);
  t.ok(err instanceof DialError);
  t.equal((err as DialError).kind, 'unreachable');
  t.equal((err as DialError).code, 'ENETUNREACH');
  t.ok(performance.now() - t0 < 100, 'without trying');
  const ok = await dialDirect({ family: 4, address: '127.0.0.1', port: (s4.address() as net.AddressInfo).port }, { localAddress6: null, timeoutMs: 2000 });
  ok.destroy();
});

t.test('a name with per-family sources: each address from its own family, IPv6 skipped without a path', async (t) => {
  const s6 = await listen('::1');
  const port6 = (s6.address() as net.AddressInfo).port;
  const s4 = await listen('127.0.0.1');
  const port4 = (s4.address() as net.AddressInfo).port;
  t.teardown(() => {
    s6.close();
    s4.close();
  });
  // "localhost" resolves to 127.0.0.1 and usually ::1 as well
  const a = await dialDirect({ family: 4, address: 'localhost', port: port4 }, { localAddress: '127.0.0.1', localAddress6: null, timeoutMs: 2000 });
  t.equal(a.localAddress, '127.0.0.1', 'IPv4, bound to the IPv4 source');
  a.destroy();
  // with an IPv6 source, localhost's ::1 (when /etc/hosts lists it first) is dialled from ::1; either way it connects
  const b = await dialDirect({ family: 4, address: 'localhost', port: port6 }, { localAddress: '127.0.0.1', localAddress6: '::1', timeoutMs: 2000 }).catch((e: unknown) => e);
  if (b instanceof net.Socket) {
    t.equal(b.localAddress, '::1', 'IPv6, bound to the IPv6 source');
    b.destroy();
  } else {
    t.ok(b instanceof DialError, 'localhost has no ::1 here: refused on IPv4, a DialError');
  }
});
