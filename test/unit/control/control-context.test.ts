// What the control API reads from a data plane (control-context.ts) over a
// real proxy core: the rules in force in the config's words with their hits
// and the default last, the upstreams without their secrets, the log level
// set only to a level, the secret from the config; and several live sources
// combined into one list with ids unique across them (live-sources.ts).
import t from 'tap';
import { pino } from 'pino';
import { controlContext } from '../../../src/data-plane/control-context.js';
import { combineSources } from '../../../src/control/live-sources.js';
import type { LiveSource } from '../../../src/control/contracts.js';
import type { DataPlaneConfig } from '../../../src/data-plane/config.js';
import { ProxyCore } from '../../../src/proxy/proxy-core.js';
import { buildPolicy, type PolicyData } from '../../../src/config/build-policy.js';
import { LogTap } from '../../../src/logging/log-tap.js';

const policy = {
  rules: [
    { name: 'corp', domain_suffix: ['corp.example'], port: [443], action: 'proxy', upstream: 'office' },
    { domain: ['bad.example'], action: 'reject' },
  ],
  upstreams: { office: { type: 'socks5', address: '127.0.0.1:1080', username: 'u', password_env: 'X' } },
  secrets: { headerValues: {}, passwords: { office: 'pw-never-shown' }, caFiles: {} },
} as unknown as PolicyData;

function setup(control?: DataPlaneConfig['control']) {
  const log = pino({ level: 'info' }, { write: () => {} });
  const core = new ProxyCore({ log, connectTimeoutMs: 1000, policy: buildPolicy(policy) });
  const config = { policy, ...(control ? { control } : {}), running: { mode: 'route-all' } } as unknown as DataPlaneConfig;
  const ctx = controlContext({
    config: () => config,
    core,
    dns: null,
    log,
    logs: new LogTap(),
    status: () => ({ mode: 'route-all' }),
    reload: async () => ({ ok: true, problems: [], applied: [], routing: [], restart: [], ms: 0 }),
  });
  return { ctx, core, log };
}

t.test("rules in the config's words, with their hits; the default last", async (t) => {
  const { ctx, core } = setup();
  core.policy.decide({ hostname: 'a.corp.example', protocol: 'tcp', dstAddress: '203.0.113.1', dstPort: 443, srcAddress: '198.18.0.1' });
  core.policy.decide({ hostname: 'other.example', protocol: 'tcp', dstAddress: '203.0.113.2', dstPort: 80, srcAddress: '198.18.0.1' });
  const rules = await ctx.rules();
  t.match(rules[0], { index: 0, name: 'corp', match: { domain_suffix: ['corp.example'], port: ['443'] }, action: 'proxy', upstream: 'office', hits: 1 });
  t.ok(rules[0].hitAt > 0, 'when it last matched');
  t.match(rules[1], { index: 1, name: 'rules[1]', match: { domain: ['bad.example'] }, action: 'reject', hits: 0, hitAt: 0 });
  t.match(rules[2], { index: 2, name: 'default', match: {}, action: 'direct', hits: 1 });
  t.same(ctx.upstreams(), [{ name: 'office', type: 'socks5', address: '127.0.0.1:1080' }], 'upstreams: name, type, address; nothing of their credentials');
  t.notOk(JSON.stringify(ctx.upstreams()).includes('pw-never-shown'));
  t.same(ctx.fakeIps(), [], "no fake IPs without the gateway's DNS");
});

t.test('the log level: set to a level only; the secret from the config', async (t) => {
  const { ctx, log } = setup({ host: '127.0.0.1', port: 9090, secret: 'abc' });
  t.equal(ctx.secret, 'abc');
  t.ok(ctx.setLogLevel('debug'));
  t.equal(log.level, 'debug');
  t.notOk(ctx.setLogLevel('loud'));
  t.equal(ctx.logLevel(), 'debug', 'unchanged by a word that is not a level');
  t.equal(setup().ctx.secret, undefined);
});

t.test('sources combined: ids unique across them, closes routed to their source, bytes summed', async (t) => {
  const closed: string[] = [];
  const source = (n: number): LiveSource => ({
    connections: () => [{ id: 7, inbound: 'tun', proto: 'tcp', src: '198.18.0.1:1', dst: '203.0.113.1:80', rule: 'default', action: 'direct', up: n, down: n, start: 0 }],
    close: (id) => (closed.push(`${n}:${id}`), id === 7),
    closeAll: () => 1,
    totals: () => ({ up: n, down: 10 * n }),
  });
  const one = combineSources([source(1)]);
  t.same(
    (await one.connections()).map((c) => c.id),
    ['7'],
    'a lone source keeps plain ids',
  );
  t.ok(await one.close('7'));
  t.notOk(await one.close('0.7'), 'a worker-prefixed id means nothing to a lone source');
  const two = combineSources([source(1), source(2)]);
  t.same(
    (await two.connections()).map((c) => c.id),
    ['0.7', '1.7'],
  );
  t.ok(await two.close('1.7'));
  t.notOk(await two.close('2.7'), 'no such source');
  t.notOk(await two.close('7'), 'an id without its source');
  t.same(closed, ['1:7', '2:7']);
  t.equal(await two.closeAll(), 2);
  t.same(await two.totals(), { up: 3, down: 30 });
});
