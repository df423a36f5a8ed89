// The README's rule-set section: its config example is accepted by the
// schema, and its plain-text example is a valid list meaning what its
// comments say.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { configSchema } from '../../../src/config/schema.js';
import { parseTextRuleSet } from '../../../src/proxy/rules/rule-set-text.js';
import { SetQuery } from '../../../src/proxy/rules/set-query.js';

const readme = readFileSync(join(import.meta.dirname, '../../../README.md'), 'utf8');
const section = readme.slice(readme.indexOf('### Rule-sets, and who made the connection'));

t.test('the config example validates', async (t) => {
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1];
  const r = configSchema.safeParse(parse(yaml));
  t.ok(r.success, JSON.stringify(r.error?.issues));
  t.same(Object.keys(r.data?.rule_sets ?? {}), ['ads', 'geoip-cn']);
});

t.test('the plain-text example parses and means what it says', async (t) => {
  const text = /- \*\*Plain text\*\*[\s\S]*?```\n([\s\S]*?)```/.exec(section)![1].replace(/^ {2}/gm, '');
  const s = parseTextRuleSet('doc', 'README', text);
  const has = (hostname?: string, dstAddress = '203.0.113.1') => s.matches(new SetQuery({ hostname, protocol: 'tls', dstAddress, dstPort: 443, srcAddress: '192.0.2.1' }));
  t.ok(has('example.com'));
  t.notOk(has('www.example.com'));
  t.ok(has('example.org') && has('a.example.org'));
  t.ok(!has('example.net') && has('a.example.net'));
  t.ok(has('a.example.io') && !has('a.b.example.io'));
  t.ok(has('ad.tracker.example'));
  t.ok(has(undefined, '198.51.100.77'));
  t.ok(has('x.example.de'));
});
