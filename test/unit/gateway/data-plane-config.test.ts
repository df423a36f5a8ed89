// What the supervisor hands its child crosses the process boundary as one
// JSON message (node's IPC): it must arrive as it was sent, and carry the
// settings the data plane runs with, not the CLI's.
import t from 'tap';
import { gatewaySettings } from '../../../src/config/settings.js';
import { dataPlaneConfig } from '../../../src/gateway/gateway.js';

t.test('plain data: the same after a JSON round trip', async (t) => {
  const s = gatewaySettings(
    { mode: 'per-host', host: ['a.example'], 'syn-backlog': '64', listen: '127.0.0.1:8080', 'max-udp-flows': '9', 'dns-tcp-idle-timeout': '5000' },
    { rules: [{ domain: ['a.example'], action: 'reject' }], upstreams: { u: { type: 'socks5', address: '127.0.0.1:1080' } }, logging: { level: 'debug' } },
  );
  const c = dataPlaneConfig(
    s,
    true,
    {
      uplink: { dev: 'tun0', source: '198.18.0.2' },
      plan: ['ip route add ...'],
      localAddress6: null,
      dns: { address: '198.18.0.2', upstreams: ['203.0.113.53'] },
    },
    { saved: 'mappings' },
  );
  t.same(JSON.parse(JSON.stringify(c)), c);
  t.match(c, { logLevel: 'debug', synBacklog: 64, maxUdpFlows: 9, hosts: ['a.example'], ipv6: true, localAddress6: null, listen: { host: '127.0.0.1', port: 8080 } });
  t.same(c.dns, { address: '198.18.0.2', upstreams: ['203.0.113.53'], tcpIdleMs: 5000 }, "DNS over TCP's idle period goes with the gateway's DNS");
  t.equal(gatewaySettings({ mode: 'per-host', host: ['a.example'] }, {}).dnsTcpIdleMs, 30_000, 'default 30 s (BIND, Unbound)');
  t.throws(
    () => gatewaySettings({ mode: 'per-host', host: ['a.example'], 'dns-tcp-idle-timeout': '10' }, {}),
    /dns-tcp-idle-timeout/,
    'under a second is refused, naming the flag',
  );
  t.same(Object.keys(c.policy).sort(), ['rules', 'secrets', 'upstreams'], 'of the config file, only what makes the policy, with the secrets it names read');
  t.notOk('stateDir' in c || 'mode' in c || 'table' in c, 'nothing of the system setup the data plane does not read');
  const bare = dataPlaneConfig({ ...s, ipv6: true, config: {} }, false, { uplink: { dev: '', source: '' }, plan: [] }, undefined);
  t.equal(bare.ipv6, false, 'IPv6 only where the TUN carries it');
  t.same(JSON.parse(JSON.stringify(bare)), bare, 'no undefined fields either without rules, saved mappings or DNS');
});
