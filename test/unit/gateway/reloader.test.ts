// The supervisor's reload on a config file in a temp dir, with the data
// plane and the routing stood in: every problem named by field and nothing
// applied; a restart-only change refused, or with force the rest applied;
// secrets read again at each reload (a rotated value file) and handed over as
// plain data; reloads in the order asked; one log line each, no secret in it.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { gatewaySettings, type GatewayFlags } from '../../../src/config/settings.js';
import { loadConfigFile } from '../../../src/config/load-config.js';
import { Reloader } from '../../../src/gateway/reloader.js';
import { liveConfig } from '../../../src/gateway/gateway.js';
import type { LiveConfig } from '../../../src/data-plane/config.js';

const dir = mkdtempSync(join(tmpdir(), 'tunsteer-reload-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'c.yaml');
const token = join(dir, 'token');

function setup(t: Test, opts: { replan?: (ex: string[]) => string[]; apply?: (l: LiveConfig) => Promise<void> } = {}) {
  const flags: GatewayFlags = { config: file };
  const applied: LiveConfig[] = [];
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  const r = new Reloader({
    settings: gatewaySettings(flags, loadConfigFile(flags.config)),
    reread: () => gatewaySettings(flags, loadConfigFile(flags.config)),
    liveConfig,
    apply: opts.apply ?? (async (l) => void applied.push(l)),
    ...(opts.replan ? { replan: opts.replan } : {}),
    log,
  });
  return { r, applied, lines };
}

const HEADER = (v = 'token') => `  - { name: key, domain: api.example, action: set-header, header: X-Key, value_file: ${join(dir, v)} }`;
const write = (rules: string, extra = '') => writeFileSync(file, `mode: route-all\n${extra}rules:\n${rules}\n`);

t.test('a valid change: the live part handed over with the secrets read again', async (t) => {
  writeFileSync(token, 'first-secret-value\n');
  write(HEADER());
  const { r, applied, lines } = setup(t);
  writeFileSync(token, 'rotated-secret-value\n');
  write(`${HEADER()}\n  - { name: no, domain_suffix: bad.example, action: reject }`, 'limits: { max_connections: 5 }\n');
  const res = await r.reload('test');
  t.match(res, { ok: true, applied: ['limits.max_connections', 'rules'], problems: [], restart: [] });
  t.equal(applied.length, 1);
  t.same(applied[0].policy.secrets.headerValues, { 0: 'rotated-secret-value' }, 'the value file read again');
  t.equal(applied[0].maxConnections, 5);
  t.equal((applied[0].running!.rules as { value_file: string }[])[0].value_file, '[redacted]', 'the running view has no secret source');
  t.match(JSON.parse(lines[0]), { msg: 'config reloaded', by: 'test', applied: ['limits.max_connections', 'rules'] });
  t.notOk(lines.join('').includes('secret-value'), 'no secret in the log');
  t.notOk(JSON.stringify(res).includes('secret-value'), 'nor in the result');
});

t.test('invalid: every problem named, nothing applied', async (t) => {
  write(HEADER());
  const { r, applied, lines } = setup(t);
  write(
    `  - { name: a, action: bogus }\n  - { name: b, domain: [], action: direct }\n  - { name: c, domain: x.example, action: set-header, header: X-K, value_file: ${join(dir, 'missing')} }`,
  );
  let res = await r.reload('test');
  t.equal(res.refused, 'invalid');
  t.match(res.problems.join('\n'), /rules\[0\]\.action/);
  t.match(res.problems.join('\n'), /rules\[1\]\.domain/);
  t.same(applied, []);
  t.match(JSON.parse(lines[0]), { msg: 'config reload refused: the running config is kept', refused: 'invalid' });
  // the schema passes, the secret does not: named too, with every other
  write(
    `  - { name: c, domain: x.example, action: set-header, header: X-K, value_file: ${join(dir, 'missing')} }\n  - { name: d, domain: y.example, action: set-header, header: X-K, value_env: TUNSTEER_TEST_UNSET_VAR }`,
  );
  res = await r.reload('test');
  t.equal(res.refused, 'invalid');
  t.match(res.problems, [/rules\[0\]\.value_file: cannot read .*missing: ENOENT/, /rules\[1\]\.value_env: environment variable TUNSTEER_TEST_UNSET_VAR is not set/]);
  writeFileSync(file, 'mode: [unclosed');
  t.match((await r.reload('test')).problems[0], /not valid YAML/);
  t.same(applied, [], 'still nothing applied');
});

t.test('a restart-only setting: refused by name, or with force the rest applied and it named', async (t) => {
  write('  - { domain: a.example, action: reject }');
  const { r, applied } = setup(t);
  write('  - { domain: b.example, action: reject }', 'tun: { mtu: 1500 }\n');
  const no = await r.reload('test');
  t.equal(no.refused, 'restart');
  t.match(no.problems, [/^tun\.mtu: needs a restart/]);
  t.same(applied, []);
  const yes = await r.reload('test', true);
  t.match(yes, { ok: true, applied: ['rules'], restart: [/^tun\.mtu/] });
  t.equal(applied.length, 1);
  t.equal((applied[0].running as { tun: { mtu: number } }).tun.mtu, 65520, 'the running view keeps the MTU it runs with');
  t.equal((await r.reload('test')).refused, 'restart', 'and the next reload names it again');
});

t.test('route-all excludes go through the replan; a failing one keeps the policy as it was', async (t) => {
  write('  - { domain: a.example, action: reject }');
  const replans: string[][] = [];
  let fail = false;
  const { r, applied } = setup(t, {
    replan: (ex) => {
      replans.push(ex);
      if (fail) throw new Error('RTNETLINK answers: File exists');
      return ex.map((e) => `+ ip rule add to ${e} lookup main`);
    },
  });
  write('  - { domain: a.example, action: reject }', 'exclude: [203.0.113.0/24]\n');
  const res = await r.reload('test');
  t.match(res, { ok: true, routing: ['+ ip rule add to 203.0.113.0/24 lookup main'] });
  t.same(replans, [['203.0.113.0/24']]);
  t.equal((await r.reload('test')).routing.length, 0, 'applied once: the next reload has nothing to change');
  fail = true;
  write('  - { domain: b.example, action: reject }', 'exclude: [198.51.100.0/24]\n');
  const bad = await r.reload('test');
  t.match(bad, { ok: false, refused: 'failed', problems: [/^exclude: RTNETLINK answers: File exists/] });
  t.equal(applied.length, 2, 'the rules of the failed reload were not handed over');
});

t.test('without a replan (no route-all plan to follow) excludes need a restart', async (t) => {
  write('  - { domain: a.example, action: reject }');
  const { r } = setup(t);
  write('  - { domain: a.example, action: reject }', 'exclude: [203.0.113.0/24]\n');
  t.match(await r.reload('test'), { refused: 'restart', problems: ['exclude: needs a restart here'] });
});

t.test('one at a time, in the order asked; a data plane that fails is reported', async (t) => {
  write('  - { domain: a.example, action: reject }');
  const order: string[] = [];
  let n = 0;
  const { r } = setup(t, {
    apply: async () => {
      const me = ++n;
      order.push(`start ${me}`);
      await new Promise((res) => setTimeout(res, 30 - me * 10));
      order.push(`end ${me}`);
      if (me === 2) throw new Error('boom');
    },
  });
  // each reads the file when its turn comes
  const a = r.reload('a');
  const b = r.reload('b');
  const [ra, rb] = await Promise.all([a, b]);
  t.same(order, ['start 1', 'end 1', 'start 2', 'end 2']);
  t.ok(ra.ok);
  t.match(rb, { ok: false, refused: 'failed', problems: [/the data plane did not take it: boom/] });
});
