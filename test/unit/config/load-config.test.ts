// The config file: the example passes and becomes a policy, every bad config
// names its field. (Flags over the file: settings.test.ts.)
import t from 'tap';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig, rulesOf } from '../../../src/config/load-config.js';
import { ConfigError } from '../../../src/config/config-error.js';
import { policyFromConfig } from '../../../src/config/build-policy.js';
import { thrown } from '../../helpers/thrown.js';

const dir = mkdtempSync(join(tmpdir(), 'tunsteer-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string, ext = 'yaml'): string {
  const f = join(dir, `c${n++}.${ext}`);
  writeFileSync(f, text);
  return f;
}

t.test('the example config passes and becomes rules and upstreams', async (t) => {
  const c = readConfig('tunsteer.example.yaml');
  t.equal(c.mode, 'per-host');
  t.same(c.hosts, ['api.example.com', '*.corp.example']);
  const rules = rulesOf(c);
  t.equal(rules.length, 6);
  t.same(rules[0].match.domain, ['api.example.com']);
  t.same(rules[0].action, { type: 'set-header', header: 'Authorization', value: { env: 'API_TOKEN' }, upstream: undefined });
  t.same(rules[3].match.port, [{ from: 22, to: 22 }]);
  t.equal(rules[3].match.cidr?.[0].prefix, 24);
  const p = policyFromConfig(c, { API_TOKEN: 'secret-value' });
  const d = p.peek({ hostname: 'x.corp.example', protocol: 'tls', dstAddress: '198.18.0.9', dstPort: 443, srcAddress: '10.0.0.2' });
  t.equal(d.action, 'proxy');
  t.equal(d.upstream?.name, 'corp-socks');
  t.equal(p.peek({ hostname: 'api.example.com', protocol: 'http', dstAddress: '198.18.0.9', dstPort: 80, srcAddress: '10.0.0.2' }).edits[0].op, 'set');
});

t.test('JSON works too, and an unset header variable is named at startup', async (t) => {
  const f = file(JSON.stringify({ rules: [{ domain: 'a.example', action: 'set-header', header: 'X-Key', value_env: 'NOPE_UNSET' }] }), 'json');
  const c = readConfig(f);
  t.throws(() => policyFromConfig(c, {}), /rules\[0\]\.value_env: environment variable NOPE_UNSET is not set/);
  const secretFile = join(dir, 'token');
  writeFileSync(secretFile, 'from-file\n');
  const c2 = readConfig(file(`rules: [{ domain: a.example, action: set-header, header: X-Key, value_file: ${secretFile} }]`));
  t.equal(policyFromConfig(c2, {}).peek({ hostname: 'a.example', protocol: 'http', dstAddress: '192.0.2.1', dstPort: 80, srcAddress: '10.0.0.2' }).edits[0].op, 'set');
});

// [config text, the field the error must name, a word of the reason]
const BAD: [string, string, RegExp][] = [
  ['mode: everything', 'mode', /route-all|per-host/],
  ['mode: per-host', 'hosts', /at least one/],
  ['hosts: ["bad host!"]', 'hosts[0]', /host name/],
  ['fake_pool: 198.18.0.1/15', 'fake_pool', /CIDR/],
  ['ipv6: maybe', 'ipv6', /true, false, "on" or "off"/],
  ['ipv6: 1', 'ipv6', /true, false, "on" or "off"/],
  ['fake_pool6: 198.18.0.0/15', 'fake_pool6', /IPv6 CIDR/],
  ['fake_pool6: "fc00::1/18"', 'fake_pool6', /CIDR/],
  ['upstreams: { u: { type: socks4, address: "127.0.0.1:1080" } }', 'upstreams.u.type', /socks5|http/],
  ['upstreams: { u: { type: http, address: "no-port" } }', 'upstreams.u.address', /host:port/],
  ['rules: [{ action: proxy }]', 'rules[0].upstream', /needs the name of an upstream/],
  ['rules: [{ action: proxy, upstream: nowhere }]', 'rules[0].upstream', /unknown upstream "nowhere"/],
  ['rules: [{ action: explode }]', 'rules[0].action', /direct/],
  ['rules: [{ domain: a.example }]', 'rules[0].action', /expected|required|Invalid/],
  ['rules: [{ action: set-header, header: X }]', 'rules[0].value_env', /value_env or value_file/],
  ['rules: [{ action: set-header, header: X, value: hunter2 }]', 'rules[0].value', /secrets never go in the config/],
  ['rules: [{ action: set-header, header: "bad header", value_env: T }]', 'rules[0].header', /header name/],
  ['rules: [{ action: remove-header }]', 'rules[0].header', /needs a header/],
  ['rules: [{ action: direct, value_env: T }]', 'rules[0].value_env', /only action "set-header"/],
  ['rules: [{ port: 70000, action: direct }]', 'rules[0].port', /./],
  ['rules: [{ port: "90-80", action: direct }]', 'rules[0].port', /./],
  ['rules: [{ cidr: 10.0.0.1/8, action: direct }]', 'rules[0].cidr', /CIDR/],
  ['rules: [{ protocol: sctp, action: direct }]', 'rules[0].protocol', /./],
  ['rules: [{ domain: a.example, action: set-header, header: Host, value_env: T }]', 'rules[0].header', /frames or routes/],
  ['rules: [{ domain: a.example, action: remove-header, header: Transfer_Encoding }]', 'rules[0].header', /frames or routes/],
  ['rules: [{ domain: a.example, action: remove-header, header: "X:Y" }]', 'rules[0].header', /token/],
  ['rules: [{ cidr: 203.0.113.0/24, action: set-header, header: X-Key, value_env: T, upstream_tls: true }]', 'rules[0].upstream_tls', /needs domain/],
  ['rules: [{ domain: a.example, action: direct, upstream_tls: true }]', 'rules[0].upstream_tls', /only action "set-header"/],
  ['rules: [{ domain: a.example, action: set-header, header: X-Key, value_env: T, upstream_tls: { port: 0 } }]', 'rules[0].upstream_tls', /./],
  ['upstreams: { u: { type: http, address: "127.0.0.1:3128", username: "a\\r\\nX-Evil: 1" } }', 'upstreams.u.username', /CR at position 1/],
  ['upstreams: { u: { type: socks5, address: "127.0.0.1:1080", username: "a\\u0000b" } }', 'upstreams.u.username', /NUL/],
  ['upstreams: { u: { type: http, address: "127.0.0.1:3128", username: "a:b" } }', 'upstreams.u.username', /RFC 7617/],
  ['fake_ip_hold_ms: 10', 'fake_ip_hold_ms', /./],
  ['rules: [{ domian: a.example, action: direct }]', 'rules[0].domian', /unknown field/],
  ['limits: { max_connections: 0 }', 'limits.max_connections', /./],
  ['tun: { mtu: 100000 }', 'tun.mtu', /./],
  ['logging: { level: loud }', 'logging.level', /./],
  ['metrics: 9090', 'metrics', /./],
  ['surprise: 1', 'surprise', /unknown field/],
  ['rules: [ {', '', /not valid YAML/],
];

t.test('secrets that cannot go on the wire are refused at start, naming the field; one trailing newline of a file is trimmed', async (t) => {
  const env = (v: string) => ({ TOK: v });
  const c = readConfig(file('rules: [{ domain: a.example, action: set-header, header: Authorization, value_env: TOK }]'));
  t.throws(() => policyFromConfig(c, env('Bearer x\r\nX-Evil: 1')), /rules\[0\]\.value_env: the value of environment variable TOK holds CR at position 8/);
  t.throws(() => policyFromConfig(c, env('Bearer x\n')), /holds LF/, 'an environment value is taken as it is');
  t.throws(() => policyFromConfig(c, env('a\u0000b')), /holds NUL/);
  t.throws(() => policyFromConfig(c, env('a\u0007b')), /control 0x07/);
  t.throws(() => policyFromConfig(c, env('a\u007fb')), /control 0x7f/);
  t.doesNotThrow(() => policyFromConfig(c, env('Bearer a\tb \xe9')), 'tab, space and obs-text are allowed');
  for (const [text, ok] of [
    ['tok\n', true],
    ['tok\r\n', true],
    ['tok', true],
    ['Bearer x\r\nX-Evil: 1\r\n', false],
    ['tok\n\n', false],
  ] as const) {
    const f = join(dir, `secret${n++}`);
    writeFileSync(f, text);
    const cf = readConfig(file(`rules: [{ domain: a.example, action: set-header, header: X-Key, value_file: ${f} }]`));
    if (ok)
      t.equal(
        policyFromConfig(cf, {}).peek({ hostname: 'a.example', protocol: 'http', dstAddress: '192.0.2.1', dstPort: 80, srcAddress: '10.0.0.2' }).edits[0].op,
        'set',
        JSON.stringify(text),
      );
    else t.throws(() => policyFromConfig(cf, {}), new RegExp(`rules\\[0\\]\\.value_file: the value of ${f} holds`), JSON.stringify(text));
  }
  const u = readConfig(file('upstreams: { s: { type: socks5, address: "127.0.0.1:1080", username: u, password_env: PW } }'));
  t.throws(() => policyFromConfig(u, { PW: 'a\r\nb' }), /upstreams\.s\.password_env: .*holds CR/);
  t.throws(() => policyFromConfig(u, { PW: 'x'.repeat(256) }), /upstreams\.s\.password_env: .*1 to 255 bytes/);
  t.doesNotThrow(() => policyFromConfig(u, { PW: 'x'.repeat(255) }));
});

t.test('every bad config is rejected with its field named', async (t) => {
  for (const [text, field, why] of BAD) {
    const f = file(text);
    try {
      readConfig(f);
      t.fail(`accepted: ${text}`);
    } catch (e) {
      t.ok(e instanceof ConfigError, text);
      const msg = (e as Error).message;
      if (field) t.ok(msg.includes(`: ${field}`), `${text} → names ${field}: ${msg}`);
      t.match(msg, why, `${text} → reason`);
      t.ok(msg.startsWith(f), 'names the file');
    }
  }
});

// Messages a newcomer met (issue 19 item 7): each says what is wrong and how to put it right.
t.test('a CIDR is told apart: prefix out of range, host bits set, not an address', async (t) => {
  const msg = (text: string) => (thrown(() => readConfig(file(text))) as Error).message;
  t.match(msg('rules: [{ cidr: 203.0.113.0/33, action: direct }]'), /rules\[0\]\.cidr: not a CIDR: the prefix \/33 is out of range: IPv4 prefixes are 0\.\.32/);
  t.notMatch(msg('rules: [{ cidr: 203.0.113.0/33, action: direct }]'), /host bits/);
  t.match(msg('rules: [{ cidr: "2001:db8::/129", action: direct }]'), /IPv6 prefixes are 0\.\.128/);
  t.match(msg('rules: [{ cidr: 203.0.113.1/24, action: direct }]'), /host bits are set after the first 24: the network is 203\.0\.113\.0\/24/);
  t.match(msg('exclude: [203.0.113.300/24]'), /"203\.0\.113\.300" is not an IPv4 or IPv6 address/);
});

t.test('a YAML syntax error shows the line at fault, with an excerpt and a caret', async (t) => {
  const f = file('mode: per-host\nhosts: [a.example\nrules: []\n');
  const m = (thrown(() => readConfig(f)) as Error).message;
  t.match(m, /line 2, column 8: the \[ opened here is not closed/, 'the line of the [, not the line after it');
  t.match(m, /> 2 \| hosts: \[a\.example\n +\| {8}\^/, 'the excerpt and a caret under the [');
  t.match(m, / 3 \| rules: \[\]/, 'the line after, for context');
  t.notMatch(m, /:\s*$/, 'no bare colon at the end');
  const q = (thrown(() => readConfig(file("mode: 'route-all\nhosts: []\n"))) as Error).message;
  t.match(q, /line 1, column 7: the ' opened here is not closed/);
  const dup = (thrown(() => readConfig(file('mode: route-all\nmode: per-host\n'))) as Error).message;
  t.match(dup, /line 2, column 1: Map keys must be unique\n/);
});

t.test('a secret written inline gets one message saying where secrets go, whatever its key', async (t) => {
  const m = (thrown(() => readConfig(file('upstreams:\n  u: { type: socks5, address: "127.0.0.1:1080", password: hunter2 }\n'))) as Error).message;
  t.match(m, /upstreams\.u\.password: secrets never go in the config text: use password_env .* or password_file/);
  t.notMatch(m, /unknown field/);
  const v = (thrown(() => readConfig(file('rules: [{ domain: a.example, action: set-header, header: X, value: hunter2 }]'))) as Error).message;
  t.equal(v.split('\n').length, 1, `one error, not two: ${v}`);
  t.match(v, /rules\[0\]\.value: secrets never go in the config text: use value_env or value_file/);
  const tok = (thrown(() => readConfig(file('rules: [{ domain: a.example, action: direct, token: abc }]'))) as Error).message;
  t.match(tok, /rules\[0\]\.token: secrets never go in the config text/);
  for (const m2 of [m, v, tok]) t.notMatch(m2, /hunter2|abc\b/, 'the secret is not repeated');
});

t.test('an empty config is an error, not "ok (0 rules)"', async (t) => {
  for (const text of ['', '# only a comment\n', '{}']) {
    const e = thrown(() => readConfig(file(text)));
    t.ok(e instanceof ConfigError, JSON.stringify(text));
    t.match((e as Error).message, /holds no settings/);
  }
});

t.test('an unknown key gets "did you mean" from the keys valid at its place', async (t) => {
  const m = (thrown(() => readConfig(file('rules: [{ domian_suffix: a.example, action: direct }]\nmdoe: route-all\nlimits: { max_conections: 5 }\n'))) as Error).message;
  t.match(m, /rules\[0\]\.domian_suffix: unknown field \(did you mean domain_suffix\?\)/);
  t.match(m, /: mdoe: unknown field \(did you mean mode\?\)/);
  t.match(m, /limits\.max_conections: unknown field \(did you mean max_connections\?\)/);
  t.match((thrown(() => readConfig(file('tun: { zzz: 1 }'))) as Error).message, /tun\.zzz: unknown field \(known here: name, mtu, address, address6, backend, workers\)/);
});
