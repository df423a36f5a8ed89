// Above the stack: TunInbound turns the stack's PendingConnection into the
// proxy core's InboundConnection (hostname from the data plane's lookup,
// 'unreachable' as ICMP, the rest as RST), and TunUdp answers the gateway's
// DNS from the address asked (holding the addresses until the answer) and
// hands every other datagram to the relay.
import t from 'tap';
import { Duplex } from 'node:stream';
import { TunInbound } from '../../../../src/proxy/tun/tun-inbound.js';
import { TunUdp } from '../../../../src/proxy/tun/tun-udp.js';
import type { PendingConnection, UdpFlowKey, UdpHandler, UdpPort } from '../../../../src/stack/contracts.js';
import { ipv4ToString, parseIpv4 } from '../../../../src/net/address.js';

t.test('TunInbound: endpoints, hostname lookup, and each way to refuse', async (t) => {
  const calls: string[] = [];
  const p: PendingConnection = {
    id: 7,
    src: { family: 4, address: '192.0.2.1', port: 40000 },
    dst: { family: 4, address: '198.18.0.4', port: 443 },
    accept: () => (calls.push('accept'), new Duplex()),
    reject: () => void calls.push('reject'),
    unreachable: () => void calls.push('unreachable'),
    counters: () => ({ up: 1, down: 2 }),
  };
  const c = new TunInbound(p, (dst) => (dst.address === '198.18.0.4' ? 'example.test' : undefined));
  t.equal(c.inbound, 'tun');
  t.equal(c.protocol, 'tcp');
  t.equal(c.id, 7);
  t.same(c.dst, p.dst);
  t.equal(c.hostname, 'example.test');
  t.equal(new TunInbound(p).hostname, undefined, 'no lookup: no name');
  c.reject('unreachable');
  c.reject('rst');
  c.reject('forbidden');
  c.accept();
  t.same(calls, ['unreachable', 'reject', 'reject', 'accept']);
  t.same(c.counters(), { up: 1, down: 2 });
});

t.test('TunUdp: DNS to the gateway address is answered from it; the rest goes to the relay; nothing without one', async (t) => {
  const DNS = parseIpv4('203.0.113.53')!;
  const CLIENT = parseIpv4('192.0.2.1')!;
  const sent: { src: string; dst: string; sport: number; dport: number; text: string }[] = [];
  const holds = new Map<number, number>();
  const port: UdpPort = {
    sendUdp: (s, d, sp, dp, b, o, l) => void sent.push({ src: ipv4ToString(s), dst: ipv4ToString(d), sport: sp, dport: dp, text: b.toString('latin1', o, o + l) }),
    sendPortUnreachable: () => {},
    sendHostUnreachable: () => {},
    addresses: {
      text: ipv4ToString,
      family: () => 4,
      hold: (ip) => void holds.set(ip, (holds.get(ip) ?? 0) + 1),
      release: (ip) => void holds.set(ip, (holds.get(ip) ?? 0) - 1),
    },
  };
  const relayed: UdpFlowKey[] = [];
  const relay: UdpHandler = { onDatagram: (k) => (relayed.push({ ...k }), true) };
  let answer!: (b: Buffer) => void;
  const u = new TunUdp(port, { address: DNS, answer: () => new Promise((r) => (answer = r)) }, relay);
  const q = Buffer.from('xxquery');
  t.ok(u.onDatagram({ clientIp: CLIENT, serverIp: DNS, clientPort: 5353, serverPort: 53 }, q, 2, 5, 0));
  t.equal(holds.get(CLIENT), 1, 'the addresses are held until the answer');
  answer(Buffer.from('reply'));
  await new Promise((r) => setImmediate(r));
  t.same(sent, [{ src: '203.0.113.53', dst: '192.0.2.1', sport: 53, dport: 5353, text: 'reply' }], 'answered from the address asked');
  t.equal(holds.get(CLIENT), 0, 'and released');
  t.equal(u.counters.dnsQueries, 1);
  t.ok(u.onDatagram({ clientIp: CLIENT, serverIp: parseIpv4('203.0.113.9')!, clientPort: 5353, serverPort: 53 }, q, 0, 7, 0));
  t.equal(relayed.length, 1, 'port 53 of another address is relayed');
  const noRelay = new TunUdp(port, null, null);
  t.notOk(noRelay.onDatagram({ clientIp: CLIENT, serverIp: DNS, clientPort: 1, serverPort: 53 }, q, 0, 7, 0), 'nothing takes it: the stack counts it');
  const hijack = new TunUdp(port, { address: -1, answer: async () => null }, null);
  t.ok(hijack.onDatagram({ clientIp: CLIENT, serverIp: parseIpv4('198.51.100.1')!, clientPort: 1, serverPort: 53 }, q, 0, 7, 0), 'address -1: port 53 of every destination');
});
