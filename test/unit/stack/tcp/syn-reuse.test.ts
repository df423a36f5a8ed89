// A fresh SYN (a new ISN) on the 4-tuple of an old flow the client no longer
// has, in every state the old flow can be left in: the client must get its
// SYN-ACK at once or after one SYN retransmission (the old flow answers with
// a challenge ACK, RFC 5961 §4, the client's RST ends it, as with Linux).
// Issue 14 saw a fresh SYN unanswered for 3 s: a SYN that met a flow still
// waiting for its upstream was ignored as a "repeated SYN", whatever its ISN.
import t from 'tap';
import type { Duplex } from 'node:stream';
import { StackNet } from '../stack-harness.js';
import type { PendingConnection } from '../../../../src/stack/contracts.js';

const P = 40000;
const settle = () => new Promise((r) => setImmediate(r));
type Old = 'pending' | 'SYN-RECEIVED' | 'ESTABLISHED' | 'CLOSE-WAIT' | 'LAST-ACK' | 'FIN-WAIT-1' | 'FIN-WAIT-2' | 'CLOSING' | 'TIME-WAIT';
/** How soon the new SYN is answered: at once, or after the client's first retransmission (1 s). */
const rows: [Old, number][] = [
  ['pending', 10],
  ['SYN-RECEIVED', 1010],
  ['ESTABLISHED', 1010],
  ['CLOSE-WAIT', 1010],
  ['LAST-ACK', 1010],
  ['FIN-WAIT-1', 1010],
  ['FIN-WAIT-2', 1010],
  ['CLOSING', 1010],
  ['TIME-WAIT', 10],
];

for (const [old, within] of rows) {
  t.test(`old flow ${old}: the new SYN is answered within ${within} ms`, async (t) => {
    let hold = old === 'pending';
    const streams: Duplex[] = [];
    const held: PendingConnection[] = [];
    const net = new StackNet({}, (c) => {
      if (hold) return void held.push(c);
      const s = c.accept();
      s.on('data', () => {});
      s.on('error', () => {});
      streams.push(s);
    });
    const a = net.client(P, 1000);
    if (old === 'SYN-RECEIVED') net.drop(P); // our SYN-ACK goes nowhere
    net.step(10);
    const app = streams[0];
    const appEnd = async () => {
      app.end();
      await settle();
    };
    switch (old) {
      case 'ESTABLISHED':
        net.drop(P);
        break;
      case 'CLOSE-WAIT':
        a.conn.close(net.now);
        net.step(10);
        net.drop(P);
        break;
      case 'LAST-ACK':
        a.conn.close(net.now);
        net.step(10);
        net.drop(P);
        await appEnd();
        net.step(10);
        break;
      case 'FIN-WAIT-1':
        net.drop(P);
        await appEnd();
        net.step(10);
        break;
      case 'FIN-WAIT-2':
        await appEnd();
        net.step(10);
        net.drop(P);
        break;
      case 'CLOSING':
        await appEnd();
        a.conn.close(net.now);
        net.drop(P);
        net.step(10);
        break;
      case 'TIME-WAIT':
        await appEnd();
        net.step(10);
        a.conn.close(net.now);
        net.step(10);
        break;
    }
    const key = old === 'pending' ? 'SYN-RECEIVED' : old;
    t.same(net.stack.tcpStates(), { [`tcp_state_${key.toLowerCase().replace('-', '_')}`]: 1 }, `the old flow is ${old}`);
    hold = false;
    const t0 = net.now;
    const b = net.client(P, 5_000_000);
    let openAt = -1;
    for (let i = 0; i < 300 && openAt < 0; i++) {
      net.step(10);
      await settle();
      if (b.events.includes('open')) openAt = net.now - t0;
    }
    t.ok(openAt >= 0 && openAt <= within, `the new connection opened after ${openAt} ms`);
    t.equal(net.stack.connections, 1, 'one flow: the new one');
    if (old === 'pending') t.throws(() => held[0].accept(), /gone/, 'the abandoned attempt is gone: its late accept() fails');
  });
}

t.test('a retransmitted SYN (same ISN) on a pending flow still changes nothing', async (t) => {
  const net = new StackNet();
  const a = net.client(P, 1000);
  net.step(10);
  t.equal(net.conns.length, 1);
  net.step(1000); // the client's SYN comes again
  t.ok((a.conn.debugState(net.now).retransmits as number) >= 1, 'the client resent its SYN');
  t.equal(net.conns.length, 1, 'no second connection');
  t.equal(net.stack.connections, 1);
  t.same(a.seen, [], 'and no answer until the upstream stands');
  net.conns[0].accept();
  net.step(10);
  t.ok(a.events.includes('open'));
});

t.test('a layer above that throws on a new connection does not leave it pending: the SYN retransmission gets through', async (t) => {
  let calls = 0;
  const net = new StackNet({}, (c) => {
    if (calls++ === 0) throw new Error('proxy core bug');
    c.accept();
  });
  const a = net.client(P, 1000);
  net.step(10);
  t.equal(net.stack.connections, 0, 'the failed flow is gone');
  net.step(1000);
  t.ok(a.events.includes('open'), 'the retransmitted SYN opened the connection');
});
