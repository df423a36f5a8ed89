// The control API's settings: off unless asked, loopback needs no secret,
// anything else refuses to start without one; the secret is read from where
// the config points, never the text, and must fit in a header.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewaySettings } from '../../../src/config/settings.js';
import { configSchema } from '../../../src/config/schema.js';
import { readControlSecret } from '../../../src/config/control-secret.js';
import { ConfigError } from '../../../src/config/config-error.js';
import { thrown } from '../../helpers/thrown.js';
import { runningConfig } from '../../../src/config/running-config.js';

const m = { mode: 'route-all' as const };

t.test('off by default; a flag or the file turns it on; the flag wins', async (t) => {
  t.equal(gatewaySettings({}, m).control, undefined);
  t.same(gatewaySettings({ control: '127.0.0.1:9090' }, m).control, { host: '127.0.0.1', port: 9090 });
  t.same(gatewaySettings({}, { ...m, control: '[::1]:9091' }).control, { host: '::1', port: 9091 });
  t.same(gatewaySettings({ control: '127.0.0.2:1' }, { ...m, control: { address: '127.0.0.1:9090', secret_env: 'S' } }).control, {
    host: '127.0.0.2',
    port: 1,
    secret: { env: 'S' },
  });
});

t.test('off loopback only with a secret, named by the field to set', async (t) => {
  const e = thrown(() => gatewaySettings({ control: '0.0.0.0:9090' }, m));
  t.ok(e instanceof ConfigError);
  t.match(e, /control\.secret_env: required when the control API listens on 0\.0\.0\.0/);
  t.same(gatewaySettings({}, { ...m, control: { address: '192.0.2.1:9090', secret_file: '/etc/s' } }).control, { host: '192.0.2.1', port: 9090, secret: { file: '/etc/s' } });
  t.match(
    thrown(() => gatewaySettings({ control: 'nope' }, m)),
    /--control: "nope" is not HOST:PORT/,
  );
});

t.test('the schema: one source for the secret, never its value', async (t) => {
  const both = configSchema.safeParse({ control: { address: '127.0.0.1:9090', secret_env: 'A', secret_file: '/b' } });
  t.notOk(both.success);
  t.match(JSON.stringify(both.error?.issues), /control.*secret_file.*not both/);
  t.notOk(configSchema.safeParse({ control: { address: '127.0.0.1:9090', secret: 'inline' } }).success, 'no secret in the text');
});

t.test('the secret: read from a variable or a file, checked, never echoed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tunsteer-ctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 's');
  writeFileSync(f, 'file-secret\n');
  t.equal(readControlSecret({ host: '127.0.0.1', port: 1, secret: { file: f } }), 'file-secret', 'one trailing newline trimmed');
  t.equal(readControlSecret({ host: '127.0.0.1', port: 1, secret: { env: 'X' } }, { X: 'env-secret' }), 'env-secret');
  t.equal(readControlSecret({ host: '127.0.0.1', port: 1 }), undefined);
  t.match(
    thrown(() => readControlSecret({ host: '127.0.0.1', port: 1, secret: { env: 'X' } }, {})),
    /control\.secret_env: environment variable X is not set/,
  );
  const bad = thrown(() => readControlSecret({ host: '127.0.0.1', port: 1, secret: { env: 'X' } }, { X: 'two words' }));
  t.match(bad, /control\.secret_env: .* holds a space or a control character/);
  t.notOk(String(bad).includes('two words'), 'the value is not in the message');
  t.match(
    thrown(() => readControlSecret({ host: '127.0.0.1', port: 1, secret: { env: 'X' } }, { X: '' })),
    /is empty/,
  );
});

t.test('the running config: every secret source redacted', async (t) => {
  const s = gatewaySettings(
    {},
    {
      ...m,
      control: { address: '127.0.0.1:9090', secret_file: '/etc/tunsteer/control' },
      upstreams: { u: { type: 'socks5', address: '127.0.0.1:1080', username: 'me', password_env: 'PW' } },
      rules: [{ domain: ['a.example'], action: 'set-header', header: 'X-K', value_file: '/etc/k' }],
    },
  );
  const text = JSON.stringify(runningConfig(s));
  for (const leak of ['/etc/tunsteer/control', 'PW', '/etc/k']) t.notOk(text.includes(leak), `${leak} is not shown`);
  t.match(runningConfig(s), { control: { address: '127.0.0.1:9090', secret: '[redacted]' }, upstreams: { u: { username: 'me', password_env: '[redacted]' } } });
});

t.test('check-config warns of a control secret up could not read, never showing one it could', async (t) => {
  const { checkConfig } = await import('../../../src/cli/commands/check-config.js');
  const dir = mkdtempSync(join(tmpdir(), 'tunsteer-ctl-check-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'mode: route-all\ncontrol: { address: "127.0.0.1:9090", secret_env: CTL_SECRET }\n');
  const run = (env: NodeJS.ProcessEnv) => {
    let err = '';
    const w = process.stderr.write.bind(process.stderr);
    const o = process.stdout.write.bind(process.stdout);
    process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      return { code: checkConfig(file, env), err };
    } finally {
      process.stderr.write = w;
      process.stdout.write = o;
    }
  };
  const unset = run({});
  t.equal(unset.code, 0, "a warning, not an error: the variable is the running gateway's");
  t.match(unset.err, /warning: control\.secret_env: .*CTL_SECRET/);
  const set = run({ CTL_SECRET: 'fine-secret-value' });
  t.equal(set.err, '', 'no warning when up could read it');
  const spaced = run({ CTL_SECRET: 'has a space' });
  t.match(spaced.err, /control\.secret_env/);
  t.notMatch(spaced.err, /has a space/, 'the value is never shown');
});
