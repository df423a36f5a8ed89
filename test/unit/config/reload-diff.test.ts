// What a reload would change, sorted by what it takes: live in the data
// plane, route-all's excludes through the journal, or a restart (named, with
// why). And what runs after a forced reload: the live part only.
import t from 'tap';
import { gatewaySettings } from '../../../src/config/settings.js';
import { adoptLive, diffSettings, settingsKnownToReload } from '../../../src/config/reload-diff.js';
import type { ConfigFile } from '../../../src/config/schema.js';

const base: ConfigFile = {
  mode: 'route-all',
  rules: [{ domain: ['a.example'], action: 'reject' }],
  limits: { max_connections: 1000 },
};
const s = (c: Partial<ConfigFile>, flags = {}) => gatewaySettings(flags, { ...base, ...c } as ConfigFile);

t.test('nothing changed: nothing to do', async (t) => {
  t.same(diffSettings(s({}), s({})), { live: [], routing: [], restart: [], policy: false });
});

t.test('rules, upstreams, hosts and limits change live', async (t) => {
  const d = diffSettings(
    s({}),
    s({
      rules: [{ domain: ['b.example'], action: 'reject' }],
      hosts: ['x.example'],
      limits: { max_connections: 2000, udp_idle_timeout_ms: 5000 },
      logging: { level: 'debug' },
      sniff: { timeout_ms: 50 },
    }),
  );
  t.same(d.live.sort(), ['hosts', 'limits.max_connections', 'limits.udp_idle_timeout_ms', 'logging.level', 'rules', 'sniff.timeout_ms']);
  t.ok(d.policy);
  t.same(d.restart, []);
});

t.test('the mode, the TUN, the listeners need a restart, each named with why', async (t) => {
  const d = diffSettings(s({}), s({ mode: 'per-host', hosts: ['a.example'], tun: { mtu: 1500 }, listen: '127.0.0.1:8080', limits: { max_connections: 1000, tcp_rcvbuf: 65536 } }));
  t.match(d.restart.join('\n'), /^mode: needs a restart/m);
  t.match(d.restart.join('\n'), /^tun\.mtu: needs a restart \(the TUN is open\)/m);
  t.match(d.restart.join('\n'), /^listen: needs a restart/m);
  t.match(d.restart.join('\n'), /^limits\.tcp_rcvbuf: needs a restart \(the window scale/m);
  t.same(d.live, ['hosts'], 'hosts still change live');
});

t.test('excludes: through the journal in route-all, a restart in redirect', async (t) => {
  t.same(diffSettings(s({}), s({ exclude: ['203.0.113.0/24'] })).routing, ['exclude']);
  const r = diffSettings(s({ mode: 'redirect' }), s({ mode: 'redirect', exclude: ['203.0.113.0/24'] }));
  t.same(r.routing, []);
  t.match(r.restart.join('\n'), /exclude: needs a restart/);
});

t.test('a flag still wins over the file at reload: changing the file under it changes nothing', async (t) => {
  const d = diffSettings(s({}, { 'max-connections': '5' }), s({ limits: { max_connections: 99 } }, { 'max-connections': '5' }));
  t.same(d.live, []);
});

t.test('adoptLive: takes the live part, keeps what waits for a restart', async (t) => {
  const now = s({});
  const next = s({ tun: { mtu: 1500 }, rules: [], limits: { max_connections: 7 }, exclude: ['203.0.113.0/24'] });
  const a = adoptLive(now, next, false);
  t.equal(a.mtu, now.mtu, 'the MTU as it runs');
  t.equal(a.maxConnections, 7);
  t.same(a.config.rules, []);
  t.same(a.excludes, [], 'excludes only once the journal has them');
  t.same(adoptLive(now, next, true).excludes, ['203.0.113.0/24']);
  // the MTU, and the worker count too where the default follows the MTU (not while workers are off by default)
  t.same(
    diffSettings(a, next).restart.map((r) => r.split(':')[0]),
    ['tun.mtu', ...(now.workers !== next.workers ? ['tun.workers'] : [])],
    'the next reload names the MTU again',
  );
});

t.test('every setting is sorted: live, routing, restart, or fixed by the flags', async (t) => {
  const all = s({ listen: '127.0.0.1:8080', metrics: '127.0.0.1:9100', control: '127.0.0.1:9090', user: 'nobody' } as Partial<ConfigFile>, {
    netns: '/proc/1/ns/net',
    'dry-run': true,
    'shared-resolv-conf': true,
  });
  const known = settingsKnownToReload();
  t.same(
    Object.keys(all).filter((k) => !known.has(k)),
    [],
    'a setting not listed would change silently, or never, at a reload',
  );
});
