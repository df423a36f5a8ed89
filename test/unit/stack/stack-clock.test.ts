// The stack on a fake clock: without a clock option every path (accept from
// the layer above, the stream's writes, timers) runs on the times input() and
// tick() were given, so a test can place a retransmission to the millisecond.
// And one admission check for new connections, a SYN and a SYN cookie's ACK alike.
import t from 'tap';
import { StackNet } from './stack-harness.js';
import { Drop } from '../../../src/stack/drop-counters.js';
import { ACK, SYN, RST } from '../../../src/stack/contracts.js';

t.test('accept() outside input runs at the last time seen; the SYN-ACK is resent exactly one RTO later', async (t) => {
  const net = new StackNet({ tcp: { rtoInitial: 1000 } });
  net.now = 5000;
  const a = net.client(40000, 1000);
  net.drop(40000); // the client hears nothing from now on
  net.step(10); // 5010
  net.now = 7500;
  net.stack.tick(7500);
  net.conns[0].accept(); // from the layer above, between batches: at 7500
  t.equal(net.deliver(), 1, 'the SYN-ACK');
  net.stack.tick(8499);
  t.equal(net.deliver(), 0, 'not yet at 8499');
  net.stack.tick(8500);
  t.equal(net.deliver(), 1, 'resent at 7500 + 1000, on the fake clock');
  void a;
});

t.test("one admission check: at maxConnections a SYN and a SYN cookie's ACK both get a RST, counted alike", async (t) => {
  const net = new StackNet({ maxHalfOpen: 1, maxConnections: 2 });
  net.client(40001, 1000); // half-open, pending: the backlog is full
  net.step(10);
  net.pause(40004);
  const d = net.client(40004, 4000); // a cookie SYN-ACK, its answer held back
  net.step(10);
  t.equal(net.stack.counters.synCookiesSent, 1);
  const b = net.client(40002, 2000); // a cookie, answered at once: the second connection
  net.step(10);
  t.equal(net.stack.counters.synCookiesAccepted, 1);
  t.equal(net.stack.connections, 2, 'at the limit');
  t.ok(b.conn.state === 'ESTABLISHED');
  const c = net.client(40003, 3000);
  net.step(10);
  t.same(
    c.seen.map(([f]) => f),
    [RST | ACK],
    'a SYN over the limit: RST',
  );
  t.equal(net.stack.counters.synRefused, 1);
  net.resume(40004); // the cookie's ACK arrives now, over the limit
  net.step(10);
  t.same(
    d.seen.map(([f]) => f),
    [SYN | ACK, RST],
    "the cookie's ACK over the limit: RST, as for a SYN",
  );
  t.equal(net.stack.counters.synCookiesAccepted, 1, 'no connection from it');
  t.equal(net.stack.counters.synRefused, 2);
  t.equal(net.stack.drops.get(Drop.syn_over_limit), 2, 'both counted under the same reason');
  t.equal(net.stack.connections, 2);
});
