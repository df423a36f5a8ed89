// openOnceMore: a dial whose source address has just gone (EADDRNOTAVAIL) is made once more with the
// addresses handed over meanwhile; any other failure is the dial's answer at once.
import t from 'tap';
import type net from 'node:net';
import { openOnceMore, type Opened, type OpenOptions } from '../../../src/proxy/upstream-open.js';
import { DialError } from '../../../src/proxy/upstream-dialer.js';

const opened: Opened = { socket: {} as net.Socket, dialled: { address: '203.0.113.5' } };

t.test('the address gone: dialled again from the new address once it is handed over', async (t) => {
  let local = '192.0.2.1';
  const tried: (string | null | undefined)[] = [];
  const dial = async (o: OpenOptions) => {
    tried.push(o.localAddress);
    if (o.localAddress === '192.0.2.1') {
      setTimeout(() => (local = '192.0.2.2'), 50); // the supervisor hands over the new lease
      throw new DialError('bind EADDRNOTAVAIL', 'error', 'EADDRNOTAVAIL');
    }
    return opened;
  };
  const t0 = Date.now();
  t.equal(await openOnceMore(dial, () => ({ localAddress: local, connectTimeoutMs: 1000 })), opened);
  t.same(tried, ['192.0.2.1', '192.0.2.2'], 'the second dial used the new address');
  t.ok(Date.now() - t0 < 900, 'as soon as it changed, not after the whole wait');
});

t.test('any other failure is thrown at once, dialled once', async (t) => {
  let dials = 0;
  const dial = async () => {
    dials++;
    throw new DialError('connect ECONNREFUSED', 'refused', 'ECONNREFUSED');
  };
  await t.rejects(
    openOnceMore(dial, () => ({ localAddress: '192.0.2.1', connectTimeoutMs: 1000 })),
    { code: 'ECONNREFUSED' },
  );
  t.equal(dials, 1);
});
