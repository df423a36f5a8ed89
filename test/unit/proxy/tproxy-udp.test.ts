// TPROXY's UDP relay without the kernel's TPROXY: datagrams are handed to
// input() as the transparent socket would, the upstream is a loopback echo
// socket, and replies are caught where they would leave FROM the original
// destination. Flows are per (client, original destination), bounded,
// rejectable, expire when idle, and each logs one line when it ends.
import t from 'tap';
import dgram from 'node:dgram';
import { TproxyUdp } from '../../../src/proxy/tproxy-udp.js';
import type { TproxyUdpFlowEnd, TproxyUdpOptions } from '../../../src/proxy/tproxy-udp-contracts.js';
import type { Endpoint } from '../../../src/tun/native-addon.js';
import { Policy } from '../../../src/proxy/policy.js';
import { admitUdp } from '../../../src/proxy/udp-admission.js';
import type { Rule } from '../../../src/proxy/rules/rule-types.js';
import { clientHelloMessage, initialDatagrams } from '../../helpers/quic-initial-encoder.js';

const ep = (address: string, port: number): Endpoint => ({ family: address.includes(':') ? 6 : 4, address, port });

async function echoServer(t: { teardown(f: () => void): void }): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  t.teardown(() => s.close());
  return s.address().port;
}

function harness(t: { teardown(f: () => void): void }, opts: Partial<TproxyUdpOptions> = {}) {
  let now = 0;
  const replies: { from: string; to: string; data: string }[] = [];
  const ends: TproxyUdpFlowEnd[] = [];
  const relay = new TproxyUdp(
    {
      idleMs: 5000,
      maxFlows: 16,
      onFlowEnd: (e) => ends.push(e),
      sendReply: (from, to, msg) => {
        replies.push({ from: `${from.address}:${from.port}`, to: `${to.address}:${to.port}`, data: msg.toString() });
        return msg.length;
      },
      ...opts,
    },
    () => now,
  );
  t.teardown(() => relay.close());
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  return { relay, replies, ends, until, tick: (ms: number) => (now += ms) };
}

t.test('a flow relays both ways; replies leave from the original destination to the client; its end is one line', async (t) => {
  const port = await echoServer(t);
  const h = harness(t);
  const client = ep('127.0.0.1', 40001);
  const dst = ep('127.0.0.1', port);
  h.relay.input(client, dst, Buffer.from('one'));
  h.relay.input(client, dst, Buffer.from('two!'));
  await h.until(() => h.replies.length === 2);
  t.strictSame(h.replies.map((r) => r.data).sort(), ['one', 'two!']);
  for (const r of h.replies) {
    t.equal(r.from, `127.0.0.1:${port}`, 'from the original destination');
    t.equal(r.to, '127.0.0.1:40001', 'to the client');
  }
  t.equal(h.relay.size, 1, 'one flow for both datagrams');
  t.match(h.relay.counters, { udpFlows: 1, udpFlowsTotal: 1, udpOut: 2 });
  h.tick(4999);
  h.relay.sweep(4999);
  t.equal(h.relay.size, 1, 'not idle yet');
  h.tick(1);
  h.relay.sweep(5000);
  t.equal(h.relay.size, 0, 'expired after idleMs');
  t.strictSame(h.ends, [{ src: '127.0.0.1:40001', dst: `127.0.0.1:${port}`, up: 7, down: 7, ms: 5000, end: 'idle', rule: 'default', action: 'direct' }]);
  t.equal(h.relay.counters.udpFlows, 0);
});

t.test('flows are per (client, original destination); an IPv6 endpoint is logged in brackets', async (t) => {
  const port = await echoServer(t);
  const h = harness(t);
  h.relay.input(ep('127.0.0.1', 40001), ep('127.0.0.1', port), Buffer.from('a'));
  h.relay.input(ep('127.0.0.1', 40002), ep('127.0.0.1', port), Buffer.from('b'));
  await h.until(() => h.replies.length === 2);
  t.equal(h.relay.size, 2);
  t.strictSame(new Set(h.replies.map((r) => `${r.to} ${r.data}`)), new Set(['127.0.0.1:40001 a', '127.0.0.1:40002 b']));
  h.relay.input(ep('::1', 40003), ep('::1', 9), Buffer.from('c')); // loopback, nothing listens: no reply expected
  h.relay.close();
  t.equal(h.ends.length, 3);
  t.ok(h.ends.every((e) => e.end === 'shutdown'));
  t.ok(h.ends.some((e) => e.src === '[::1]:40003' && e.dst === '[::1]:9' && e.up === 1));
  h.relay.input(ep('127.0.0.1', 40001), ep('127.0.0.1', port), Buffer.from('late'));
  t.equal(h.relay.size, 0, 'after close nothing opens');
});

t.test('a reject rule drops the datagrams (counted) without opening a flow or a socket', async (t) => {
  let received = 0;
  const s = dgram.createSocket('udp4');
  s.on('message', () => received++);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  t.teardown(() => s.close());
  const seen: string[] = [];
  const h = harness(t, {
    admit: (src, dst) => {
      seen.push(`${src.address}:${src.port}>${dst.address}:${dst.port}`);
      return { rule: 'no-udp', action: 'reject' };
    },
  });
  const dst = ep('127.0.0.1', s.address().port);
  h.relay.input(ep('127.0.0.1', 40001), dst, Buffer.from('x'));
  h.relay.input(ep('127.0.0.1', 40001), dst, Buffer.from('y'));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(received, 0);
  t.equal(h.relay.size, 0);
  t.match(h.relay.counters, { udpRejected: 2, udpDropped: 2, udpFlowsTotal: 0 });
  t.equal(seen[0], `127.0.0.1:40001>127.0.0.1:${dst.port}`);
  t.equal(h.ends.length, 0, 'no flow, no line');
});

t.test('the rule is named in the line of an admitted flow', async (t) => {
  const port = await echoServer(t);
  const h = harness(t, { admit: () => ({ rule: 'lan-udp', action: 'direct' }) });
  h.relay.input(ep('127.0.0.1', 40001), ep('127.0.0.1', port), Buffer.from('x'));
  await h.until(() => h.replies.length === 1);
  h.relay.close();
  t.equal(h.ends[0].rule, 'lan-udp');
});

t.test('at most maxFlows: datagrams of a new flow beyond it are dropped, the existing flows go on', async (t) => {
  const port = await echoServer(t);
  const h = harness(t, { maxFlows: 2 });
  const dst = ep('127.0.0.1', port);
  h.relay.input(ep('127.0.0.1', 40001), dst, Buffer.from('1'));
  h.relay.input(ep('127.0.0.1', 40002), dst, Buffer.from('2'));
  h.relay.input(ep('127.0.0.1', 40003), dst, Buffer.from('3'));
  t.equal(h.relay.size, 2);
  t.equal(h.relay.counters.udpDropped, 1);
  h.relay.input(ep('127.0.0.1', 40001), dst, Buffer.from('1b'));
  await h.until(() => h.replies.length === 3);
  t.strictSame(h.replies.map((r) => r.data).sort(), ['1', '1b', '2']);
});

t.test('only the destination may answer: a datagram from elsewhere to the flow socket is not relayed', async (t) => {
  const port = await echoServer(t);
  const h = harness(t);
  h.relay.input(ep('127.0.0.1', 40001), ep('127.0.0.1', port), Buffer.from('x'));
  await h.until(() => h.replies.length === 1);
  // the flow's socket: the one local UDP socket that sent to the echo server
  const flows = (h.relay as unknown as { flows: Map<string, { sock: dgram.Socket }> }).flows;
  const flowPort = [...flows.values()][0].sock.address().port;
  const stranger = dgram.createSocket('udp4');
  t.teardown(() => stranger.close());
  await new Promise<void>((r) => stranger.send('spoof', flowPort, '127.0.0.1', () => r()));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(h.replies.length, 1, 'nothing relayed from a stranger');
});

t.test('a reply the reply socket cannot send is counted, the flow goes on', async (t) => {
  const port = await echoServer(t);
  let fail = true;
  const h = harness(t, {
    sendReply: (_from, _to, msg) => {
      if (fail) throw Object.assign(new Error('sendmsg EPERM'), { code: 'EPERM' });
      return msg.length;
    },
  });
  const client = ep('127.0.0.1', 40001);
  h.relay.input(client, ep('127.0.0.1', port), Buffer.from('x'));
  await h.until(() => h.relay.counters.udpReplyErrors === 1);
  t.equal(h.relay.counters.udpReplyErrors, 1);
  fail = false;
  h.relay.input(client, ep('127.0.0.1', port), Buffer.from('y'));
  await h.until(() => h.relay.counters.udpOut === 1);
  t.equal(h.relay.counters.udpOut, 1);
  t.equal(h.relay.size, 1);
});

t.test("a datagram to our own port on one of this host's addresses is not relayed (it would come back to us)", async (t) => {
  const h = harness(t);
  // not listening: our port is 0 here
  const addresses = Object.values((await import('node:os')).networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
  h.relay.input(ep('127.0.0.1', 40001), ep('127.0.0.1', 0), Buffer.from('x'));
  h.relay.input(ep('::1', 40001), ep('::1', 0), Buffer.from('x'));
  for (const a of addresses) h.relay.input(ep('127.0.0.1', 40001), ep(a, 0), Buffer.from('x'));
  t.equal(h.relay.counters.udpNotIntercepted, 2 + addresses.length);
  t.equal(h.relay.size, 0);
});

t.test('a port unreachable from the destination goes back to the client as one from the destination, quoting its datagram; the flow stays', async (t) => {
  const closed = dgram.createSocket('udp4');
  await new Promise<void>((r) => closed.bind(0, '127.0.0.1', r));
  const port = closed.address().port;
  await new Promise<void>((r) => closed.close(() => r()));
  const sent: { dst: string; client: string; udpLength: number }[] = [];
  const h = harness(t, {
    sendUnreachable: (dst, client, udpLength) => {
      sent.push({ dst: `${dst.address}:${dst.port}`, client: `${client.address}:${client.port}`, udpLength });
      return 36;
    },
  });
  const client = ep('127.0.0.1', 40001);
  h.relay.input(client, ep('127.0.0.1', port), Buffer.from('anyone?'));
  await h.until(() => sent.length === 1);
  t.strictSame(sent, [{ dst: `127.0.0.1:${port}`, client: '127.0.0.1:40001', udpLength: 8 + 7 }]);
  t.equal(h.relay.counters.udpUnreachable, 1);
  t.equal(h.relay.size, 1, 'the flow stays: the client may try again');
  h.relay.input(client, ep('127.0.0.1', port), Buffer.from('again'));
  await h.until(() => sent.length === 2);
  t.equal(sent[1]?.udpLength, 8 + 5);
});

t.test('QUIC through TPROXY: the SNI decides, a hello spanning datagrams is held until read, the line names it', async (t) => {
  const port = await echoServer(t);
  const rules: Rule[] = [{ index: 0, match: { domain: ['blocked.example'] }, action: { type: 'reject' } }];
  const policy = new Policy(rules, new Map(), new Map());
  const h = harness(t, { admit: (src, dst, payload) => admitUdp(policy, { dstAddress: dst.address, dstPort: dst.port, srcAddress: src.address }, payload) });
  const dst = ep('127.0.0.1', port);

  const [blocked] = initialDatagrams(await clientHelloMessage('blocked.example'));
  h.relay.input(ep('127.0.0.1', 40011), dst, blocked);
  t.equal(h.relay.size, 0, 'refused by its SNI: no flow, no socket');
  t.equal(h.relay.counters.udpRejected, 1);

  const spanning = initialDatagrams(await clientHelloMessage('ok.example', ['h3'], 2000), { reverse: true });
  t.ok(spanning.length > 1, 'the hello spans datagrams');
  const client = ep('127.0.0.1', 40012);
  h.relay.input(client, dst, spanning[0]);
  t.equal(h.relay.size, 1, 'held while undecided');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(h.replies.length, 0, 'nothing relayed before the rules decided');
  for (const d of spanning.slice(1)) h.relay.input(client, dst, d);
  await h.until(() => h.replies.length === spanning.length);
  t.equal(h.replies.length, spanning.length, 'every held datagram relayed once admitted');

  const big = initialDatagrams(await clientHelloMessage('blocked.example', ['h3'], 2000), { reverse: true });
  h.relay.input(ep('127.0.0.1', 40013), dst, big[0]);
  h.tick(999);
  h.relay.sweep(999);
  t.equal(h.relay.size, 2, 'still undecided before 1 s');
  h.tick(1);
  h.relay.sweep(1000);
  t.equal(h.relay.size, 2, 'a hello never completed is decided after 1 s: unreadable, not port 443, so plain udp, relayed');
  await h.until(() => h.replies.length === spanning.length + 1);
  t.equal(h.replies.length, spanning.length + 1, 'its held datagram went out');

  h.relay.close();
  const line = h.ends.find((e) => e.src === '127.0.0.1:40012');
  t.match(line, { proto: 'quic', sni: 'ok.example', action: 'direct' });
});
