// What a UDP flow's owner lookup costs (issue 18): with SOCKETS unconnected
// UDP sockets open on the wildcard address (a busy host), the sock_diag round
// trip for one flow's client socket (found, and a forwarded source that finds
// none), the resolver's uid-only answer as the admission awaits it, and the
// admission itself from a new flow's first datagram to its verdict, against
// the same admission when no rule reads the owner. Per flow, once; the
// datagrams after the first pay nothing. Loopback only, no namespace.
//   node --import tsx bench/udp-owner.ts [--sockets 1000] [--n 20000]
import dgram from 'node:dgram';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { SockDiag } from '../src/owner/sock-diag.js';
import { OwnerResolver } from '../src/owner/owner-resolver.js';
import { Policy } from '../src/proxy/policy.js';
import { admitUdp, type UdpPending, type UdpVerdict } from '../src/proxy/udp-admission.js';

const { values } = parseArgs({ options: { sockets: { type: 'string' }, n: { type: 'string' } } });
const SOCKETS = Number(values.sockets ?? 1000);
const N = Number(values.n ?? 20_000);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;
function report(name: string, xs: number[]): void {
  console.log(`${name.padEnd(58)} median ${us(pct(xs, 0.5)).padStart(10)}   p99 ${us(pct(xs, 0.99)).padStart(10)}`);
}

const sockets: dgram.Socket[] = [];
for (let i = 0; i < SOCKETS; i++) {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '0.0.0.0', r));
  sockets.push(s);
}
const ports = sockets.map((s) => s.address().port);
console.log(`${SOCKETS} UDP sockets open, ${N} lookups each; load average ${loadavg()[0].toFixed(1)}`);

const diag = new SockDiag();
const times = (f: (i: number) => void) => {
  const xs: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    f(i);
    xs.push(performance.now() - t0);
  }
  return xs;
};
report(
  'sock_diag UDP, found',
  times((i) => diag.lookup('udp', { local: { address: '127.0.0.1', port: ports[i % SOCKETS] }, remote: { address: '198.51.100.9', port: 5300 } })),
);
report(
  'sock_diag UDP, no socket on the port',
  times(() => diag.lookup('udp', { local: { address: '127.0.0.1', port: 9 }, remote: { address: '198.51.100.9', port: 5300 } })),
);
diag.close();

const owners = new OwnerResolver();
const ep = (address: string, port: number) => ({ family: 4 as const, address, port });
const resolved: number[] = [];
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  await owners.lookup('udp', ep('127.0.0.1', ports[i % SOCKETS]), ep('198.51.100.9', 5300), 1);
  resolved.push(performance.now() - t0);
}
report('resolver, uid only (awaited)', resolved);
const forwarded: number[] = [];
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  await owners.lookup('udp', ep('192.0.2.77', ports[i % SOCKETS]), ep('198.51.100.9', 5300), 1);
  forwarded.push(performance.now() - t0);
}
report('resolver, a forwarded source on a local port (no owner)', forwarded);

const withOwner = new Policy([{ index: 0, match: { user: [{ from: 1, to: 1 }], port: [{ from: 5300, to: 5300 }] }, action: { type: 'reject' } }], new Map(), new Map());
const without = new Policy([{ index: 0, match: { port: [{ from: 5301, to: 5301 }] }, action: { type: 'reject' } }], new Map(), new Map());
const payload = Buffer.from('first datagram');
const flow = (i: number) => ({ dstAddress: '198.51.100.9', dstPort: 5300, srcAddress: '127.0.0.1', srcPort: ports[i % SOCKETS] });
const admit = async (policy: Policy, i: number) => {
  const r = admitUdp(policy, flow(i), payload, undefined, owners);
  if (!('next' in r)) return r;
  return new Promise<UdpVerdict>((done) => (r as UdpPending).later!(done));
};
for (const [name, policy] of [
  ['admission, no rule reads the owner (verdict at once)', without],
  ['admission, a user rule: first datagram to verdict', withOwner],
] as const) {
  const xs: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await admit(policy, i);
    xs.push(performance.now() - t0);
  }
  report(name, xs);
}
console.log(JSON.stringify(owners.counters));
owners.close();
for (const s of sockets) s.close();
