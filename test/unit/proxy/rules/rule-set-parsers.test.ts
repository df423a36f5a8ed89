// Rule-set files: the plain-text and sing-box source formats, what each
// entry matches, and errors named by file and line.
import t from 'tap';
import { parseTextRuleSet } from '../../../../src/proxy/rules/rule-set-text.js';
import { parseSingBoxRuleSet } from '../../../../src/proxy/rules/rule-set-sing-box.js';
import { RuleSetError } from '../../../../src/proxy/rules/rule-set-error.js';
import { loadRuleSetFile } from '../../../../src/proxy/rules/rule-set-file.js';
import { SetQuery } from '../../../../src/proxy/rules/set-query.js';
import type { RuleSet } from '../../../../src/proxy/rules/rule-set.js';
import type { MatchInput } from '../../../../src/proxy/rules/rule-types.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function q(over: Partial<MatchInput> = {}): SetQuery {
  return new SetQuery({ protocol: 'tls', dstAddress: '203.0.113.9', dstPort: 443, srcAddress: '192.0.2.50', ...over });
}
const has = (s: RuleSet, hostname: string | undefined, dstAddress = '203.0.113.9') => s.matches(q({ hostname, dstAddress }));

function problems(f: () => unknown): { line: number; message: string }[] {
  try {
    f();
  } catch (e) {
    if (e instanceof RuleSetError) return [...e.problems];
    throw e;
  }
  throw new Error('no error thrown');
}

t.test('plain text: each kind of entry', async (t) => {
  const s = parseTextRuleSet(
    'x',
    'x.txt',
    [
      '# a list',
      '',
      'exact.example',
      '+.both.example',
      '.below.example',
      '*.child.example',
      'keyword:track',
      '198.51.100.0/24',
      '2001:db8:1::/48',
      '192.0.2.7',
      'UPPER.Example.  # trailing comment',
      '1password.example',
    ].join('\n'),
  );
  t.ok(has(s, 'exact.example'));
  t.notOk(has(s, 'www.exact.example'), 'a plain name is exact');
  t.ok(has(s, 'both.example'));
  t.ok(has(s, 'a.b.both.example'));
  t.notOk(has(s, 'xboth.example'), 'a suffix starts at a label');
  t.notOk(has(s, 'below.example'), '"." is only below');
  t.ok(has(s, 'a.below.example'));
  t.ok(has(s, 'a.child.example'));
  t.notOk(has(s, 'a.b.child.example'), '"*." is one label');
  t.notOk(has(s, 'child.example'));
  t.ok(has(s, 'ad.tracker.example'), 'keyword');
  t.ok(has(s, undefined, '198.51.100.200'), 'IPv4 CIDR');
  t.notOk(has(s, undefined, '198.51.101.1'));
  t.ok(has(s, undefined, '2001:db8:1::99'), 'IPv6 CIDR');
  t.notOk(has(s, undefined, '2001:db8:2::1'));
  t.ok(has(s, undefined, '192.0.2.7'), 'a bare address is one host');
  t.ok(has(s, undefined, '::ffff:192.0.2.7'), 'IPv4-mapped matches IPv4');
  t.notOk(has(s, undefined, '192.0.2.8'));
  t.ok(has(s, 'upper.example'), 'lower-cased, trailing dot gone');
  t.ok(has(s, '1password.example'), 'a name starting with a digit is a name');
  t.ok(has(s, 'EXACT.example.'), 'the hostname is normalised too');
  t.equal(s.stats.conditional, 0);
});

t.test('plain text: mihomo classical lines', async (t) => {
  const s = parseTextRuleSet('m', 'm.list', 'DOMAIN,a.example\nDOMAIN-SUFFIX,b.example\nDOMAIN-KEYWORD,kw\nIP-CIDR,198.51.100.0/24,no-resolve\nIP-CIDR6,2001:db8::/32');
  t.ok(has(s, 'a.example'));
  t.notOk(has(s, 'x.a.example'));
  t.ok(has(s, 'b.example'));
  t.ok(has(s, 'x.b.example'));
  t.ok(has(s, 'akwb.example'));
  t.ok(has(s, undefined, '198.51.100.1'));
  t.ok(has(s, undefined, '2001:db8::1'));
});

t.test('plain text: errors name the file and line, all of the first few', async (t) => {
  const p = problems(() => parseTextRuleSet('x', '/etc/sets/x.txt', 'good.example\nbad name.example\n\n10.0.0.0/33\nkeyword:\nok.example\na..b'));
  t.same(
    p.map((x) => x.line),
    [2, 4, 5, 7],
  );
  t.match(p[0].message, /not a domain name.*"bad name.example"/);
  t.match(p[1].message, /not a CIDR/);
  t.match(p[2].message, /empty keyword/);
  t.match(p[3].message, /empty label/);
  try {
    parseTextRuleSet('x', '/etc/sets/x.txt', 'a b\n'.repeat(9));
  } catch (e) {
    t.match((e as Error).message, /^\/etc\/sets\/x\.txt:1: .*; and 4 more$/, 'five listed, the rest counted');
  }
});

t.test('sing-box: destination-only rules go into the index, the rest are checked one by one', async (t) => {
  const text = JSON.stringify(
    {
      version: 2,
      rules: [
        {
          domain: ['exact.example'],
          domain_suffix: ['suffix.example', '.below.example'],
          domain_keyword: 'kw',
          domain_regex: '^re[0-9]+\\.example$',
          ip_cidr: ['198.51.100.0/24'],
        },
        { port: 853, network: 'tcp', domain_suffix: 'dot.example' },
        { port_range: ['1000:1999'], ip_cidr: '203.0.113.0/24' },
        { type: 'logical', mode: 'and', rules: [{ network: 'udp' }, { port: [443] }] },
      ],
    },
    null,
    2,
  );
  const s = parseSingBoxRuleSet('sb', 'sb.json', text);
  t.same({ ...s.stats, bytes: 0 }, { indexed: 6, conditional: 3, bytes: 0 });
  t.ok(has(s, 'exact.example'));
  t.ok(has(s, 'suffix.example'));
  t.ok(has(s, 'a.suffix.example'));
  t.notOk(has(s, 'below.example'), '"." in domain_suffix: only below');
  t.ok(has(s, 'a.below.example'));
  t.ok(has(s, 'xkwx.example'));
  t.ok(has(s, 're42.example'));
  t.notOk(has(s, 're.example'));
  t.ok(has(s, undefined, '198.51.100.1'));
  t.ok(s.matches(q({ hostname: 'a.dot.example', dstPort: 853 })), 'port && domain');
  t.notOk(s.matches(q({ hostname: 'a.dot.example', dstPort: 443 })));
  t.notOk(s.matches(q({ hostname: 'a.dot.example', dstPort: 853, protocol: 'quic' })), 'network tcp');
  t.ok(s.matches(q({ dstAddress: '203.0.113.5', dstPort: 1500 })));
  t.notOk(s.matches(q({ dstAddress: '203.0.113.5', dstPort: 2000 })));
  t.ok(s.matches(q({ protocol: 'quic', dstPort: 443 })), 'logical and');
  t.notOk(s.matches(q({ protocol: 'udp', dstPort: 444 })));
  t.ok(s.needs.names);
  const inv = parseSingBoxRuleSet('i', 'i.json', '{"version":3,"rules":[{"domain":"a.example","network":"udp","invert":true}]}');
  t.ok(inv.matches(q({ hostname: 'a.example', protocol: 'tls' })), 'invert: not (a.example && udp) holds for TCP');
  t.notOk(inv.matches(q({ hostname: 'a.example', protocol: 'quic' })));
  t.ok(inv.matches(q({ hostname: 'b.example', protocol: 'quic' })));
  t.equal(s.needs.owner, 0);
});

t.test('sing-box: process keys make the set read the owner', async (t) => {
  const s = parseSingBoxRuleSet('p', 'p.json', '{"version":3,"rules":[{"process_name":["curl"]},{"process_path":"/usr/bin/wget"},{"process_path_regex":"^/opt/"}]}');
  t.equal(s.needs.owner, 2);
  const owner = (exe: string) => q({ owner: { uid: 1000, pid: 1, exe, comm: exe.slice(exe.lastIndexOf('/') + 1) } });
  t.ok(s.matches(owner('/usr/bin/curl')));
  t.ok(s.matches(owner('/usr/bin/wget')));
  t.ok(s.matches(owner('/opt/x/bin/tool')));
  t.notOk(s.matches(owner('/usr/local/bin/wget')));
  t.notOk(s.matches(q({ owner: null })), 'no owner: no match');
});

t.test('sing-box: errors by file and line', async (t) => {
  const text =
    '{\n  "version": 3,\n  "rules": [\n    {"domain": ["ok.example"]},\n    {"ip_cidr": ["10.0.0.0/40"]},\n    {"package_name": "com.x"},\n    {"port_range": "9:1"}\n  ]\n}\n';
  const p = problems(() => parseSingBoxRuleSet('x', 'x.json', text));
  t.same(
    p.map((x) => x.line),
    [5, 6, 7],
  );
  t.match(p[0].message, /rules\[1\]\.ip_cidr: not a CIDR/);
  t.match(p[1].message, /package_name is an Android key/);
  t.match(p[2].message, /port_range/);
  const syntax = problems(() => parseSingBoxRuleSet('x', 'x.json', '{\n "version": 3,\n "rules": [\n  {"domain": "a.example",}\n ]\n}'));
  t.equal(syntax[0].line, 4, 'a JSON syntax error by line');
  t.match(syntax[0].message, /not JSON/);
  t.match(problems(() => parseSingBoxRuleSet('x', 'x.json', '{"version": 9, "rules": []}'))[0].message, /version: expected 1, 2 or 3/);
  t.match(problems(() => parseSingBoxRuleSet('x', 'x.json', '{"version": 1, "rules": [{"type":"logical","mode":"xor","rules":[]}]}'))[0].message, /mode/);
});

t.test('loadRuleSetFile picks the format, refuses .srs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.json'), '{"version":1,"rules":[{"domain":"a.example"}]}');
  writeFileSync(join(dir, 'b.txt'), '  {"version":1,"rules":[{"domain":"b.example"}]}');
  writeFileSync(join(dir, 'c.list'), 'c.example\n');
  t.ok(has(loadRuleSetFile('a', join(dir, 'a.json')), 'a.example'));
  t.ok(has(loadRuleSetFile('b', join(dir, 'b.txt')), 'b.example'), 'text starting with { is sing-box');
  t.ok(has(loadRuleSetFile('c', join(dir, 'c.list')), 'c.example'));
  t.match(problems(() => loadRuleSetFile('d', join(dir, 'd.srs')))[0].message, /decompile/);
  t.throws(() => loadRuleSetFile('e', join(dir, 'missing.txt')), { code: 'ENOENT' });
});

t.test('IPv4 lines: the fast path agrees with the general CIDR parser', async (t) => {
  const { CidrSetBuilder } = await import('../../../../src/proxy/rules/cidr-set.js');
  const { cidrMatch } = await import('../../../../src/proxy/rules/cidr-match.js');
  const fc = (await import('fast-check')).default;
  const texts = fc.sample(
    fc.tuple(fc.ipV4(), fc.option(fc.integer({ min: 0, max: 32 }), { nil: undefined })).map(([a, p]) => (p === undefined ? a : `${a}/${p}`)),
    { numRuns: 300, seed: 18 },
  );
  const fast = new CidrSetBuilder();
  const slow = new CidrSetBuilder();
  for (const x of texts) {
    t.ok(fast.addIpv4Text(x), `fast path reads ${x}`);
    slow.add(cidrMatch(x)!);
  }
  for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4/33', '1.2.3.4/', '1.2.3.4/x', '1..2.3']) {
    t.notOk(new CidrSetBuilder().addIpv4Text(bad), `refuses ${bad}`);
    t.equal(cidrMatch(bad), null, `and so does the general parser: ${bad}`);
  }
  const a = fast.build();
  const b = slow.build();
  const addrs = fc.sample(fc.ipV4(), { numRuns: 3000, seed: 7 }).concat(texts.map((x) => x.split('/')[0]));
  let same = 0;
  for (const x of addrs) {
    const bytes = Uint8Array.from(x.split('.').map(Number));
    if (a.has(bytes) === b.has(bytes)) same++;
  }
  t.equal(same, addrs.length, 'the same membership for every address');
  const all = new CidrSetBuilder();
  all.addIpv4Text('0.0.0.0/0');
  t.ok(all.build().has(Uint8Array.of(255, 255, 255, 255)));
});
