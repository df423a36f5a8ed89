// The data plane's side of a network change: where new sockets bind, which UDP flows close, the probe after a wake.
import t from 'tap';
import type net from 'node:net';
import { applyNetworkUpdate, probeUpstreams, type LiveUplink, type UpdateTargets } from '../../../src/data-plane/network-update.js';

function targets(uplink: LiveUplink) {
  const closed: string[][] = [];
  const dnsUpdates: object[] = [];
  const udp = {
    opts: { localAddress: uplink.localAddress ?? undefined } as { localAddress?: string; localAddress6?: string },
    closeBoundTo: (a: ReadonlySet<string>) => (closed.push([...a]), 0),
  };
  const log = { info: () => {} };
  const tg = { uplink, udp, dns: { update: (u: object) => void dnsUpdates.push(u) }, log } as unknown as UpdateTargets;
  return { tg, closed, dnsUpdates, udp };
}

t.test('a new address: new sockets bind it, UDP flows on the old one close, the DNS forwarder follows', async (t) => {
  const uplink: LiveUplink = { localAddress: '192.0.2.1', localAddress6: '2001:db8:1::1' };
  const { tg, closed, dnsUpdates, udp } = targets(uplink);
  applyNetworkUpdate({ type: 'uplink', localAddress: '192.0.2.5', localAddress6: '2001:db8:1::1' }, tg);
  t.equal(uplink.localAddress, '192.0.2.5', 'the proxy core reads this at its next dial');
  t.equal(udp.opts.localAddress, '192.0.2.5');
  t.same(closed, [['192.0.2.1']]);
  t.same(dnsUpdates, [{ localAddress: '192.0.2.5', localAddress6: '2001:db8:1::1' }]);
});

t.test('no uplink for a while, then the same address back: UDP flows are kept; then another: closed', async (t) => {
  const uplink: LiveUplink = { localAddress: '192.0.2.1', localAddress6: null };
  const { tg, closed, udp } = targets(uplink);
  applyNetworkUpdate({ type: 'uplink', localAddress: null, localAddress6: null }, tg);
  t.equal(uplink.localAddress, null, 'IPv4 refused (ENETUNREACH) while there is no uplink');
  t.equal(udp.opts.localAddress, undefined);
  applyNetworkUpdate({ type: 'uplink', localAddress: '192.0.2.1', localAddress6: null }, tg);
  t.same(closed, [], 'the same address came back: its flows work again');
  applyNetworkUpdate({ type: 'uplink', localAddress: null, localAddress6: null }, tg);
  applyNetworkUpdate({ type: 'uplink', localAddress: '198.51.100.1', localAddress6: null }, tg);
  t.same(closed, [['192.0.2.1']], 'another address after the outage: the old flows close');
});

t.test('resolvers follow', async (t) => {
  const { tg, dnsUpdates } = targets({});
  applyNetworkUpdate({ type: 'resolvers', upstreams: ['203.0.113.54'] }, tg);
  t.same(dnsUpdates, [{ upstreams: ['203.0.113.54'] }]);
});

t.test('after a wake every open upstream socket gets a short keepalive, off again after the window', async (t) => {
  const calls: [string, boolean, number?][] = [];
  const sock = (name: string, destroyed = false) => ({ destroyed, setKeepAlive: (on: boolean, ms?: number) => void calls.push([name, on, ms]) }) as unknown as net.Socket;
  t.equal(probeUpstreams([sock('a'), sock('b'), sock('gone', true)], 20), 2);
  t.same(calls, [
    ['a', true, 1000],
    ['b', true, 1000],
  ]);
  await new Promise((r) => setTimeout(r, 60));
  t.same(calls.slice(2), [
    ['a', false, undefined],
    ['b', false, undefined],
  ]);
});
