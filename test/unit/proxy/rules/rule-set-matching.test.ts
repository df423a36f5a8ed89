// The rule keys rule_set, user and process, in the compiled and the naive
// matcher alike (and a property test that they agree), the policy's owner
// need, and a rule-set file watched: swapped on a good change, kept on a bad one.
import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { compileRules } from '../../../../src/proxy/rules/compiled-matcher.js';
import { NaiveMatcher } from '../../../../src/proxy/rules/naive-matcher.js';
import { parseTextRuleSet } from '../../../../src/proxy/rules/rule-set-text.js';
import { LiveRuleSet } from '../../../../src/proxy/rules/live-rule-set.js';
import { Policy } from '../../../../src/proxy/policy.js';
import { ruleSetsOf, watchRuleSets } from '../../../../src/config/rule-set-files.js';
import { configSchema } from '../../../../src/config/schema.js';
import { rulesOf } from '../../../../src/config/load-config.js';
import type { ConnectionOwner, MatchInput, Rule, RuleMatch, RuleMatcher, RuleSets } from '../../../../src/proxy/rules/rule-types.js';

function rules(...matches: RuleMatch[]): Rule[] {
  return matches.map((match, index) => ({ index, match, action: { type: 'direct' } }));
}
const input = (over: Partial<MatchInput> = {}): MatchInput => ({ protocol: 'tls', dstAddress: '203.0.113.9', dstPort: 443, srcAddress: '192.0.2.50', ...over });
const live = (name: string, text: string) => new LiveRuleSet(name, `${name}.txt`, parseTextRuleSet(name, `${name}.txt`, text));
const both = (rs: Rule[], sets: RuleSets): [string, RuleMatcher][] => [
  ['naive', new NaiveMatcher(rs, sets)],
  ['compiled', compileRules(rs, sets)],
];
const alice: ConnectionOwner = { uid: 1001, pid: 10, exe: '/usr/bin/curl', comm: 'curl' };
const bob: ConnectionOwner = { uid: 1002, pid: 11, exe: '/usr/bin/python3.11', comm: 'python3' };

t.test('rule_set, user and process keys', async (t) => {
  const sets = new Map([
    ['ads', live('ads', '+.ads.example\n198.51.100.0/24')],
    ['cdn', live('cdn', '.cdn.example')],
  ]);
  const rs = rules(
    { ruleSet: ['ads'], port: [{ from: 443, to: 443 }] }, // 0: with another key: both must hold
    { ruleSet: ['cdn', 'ads'] }, // 1: either set
    { user: [{ from: 1001, to: 1001 }] }, // 2
    { process: [{ name: 'python3' }], domain: ['py.example'] }, // 3: comm, with a domain
    { process: [{ path: '/usr/bin/curl' }] }, // 4
    { user: [{ from: 2000, to: 2999 }] }, // 5: a range
  );
  const cases: [Partial<MatchInput>, number | undefined][] = [
    [{ hostname: 'x.ads.example' }, 0],
    [{ hostname: 'x.ads.example', dstPort: 80 }, 1],
    [{ dstAddress: '198.51.100.7', dstPort: 80 }, 1],
    [{ hostname: 'a.cdn.example' }, 1],
    [{ hostname: 'cdn.example' }, undefined],
    [{ owner: alice }, 2],
    [{ owner: { ...alice, uid: 5 } }, 4],
    [{ owner: bob, hostname: 'py.example' }, 3],
    [{ owner: bob, hostname: 'other.example' }, undefined],
    [{ owner: { uid: 2500 } }, 5],
    [{ owner: null }, undefined],
    [{ owner: undefined }, undefined],
  ];
  for (const [name, m] of both(rs, sets)) {
    for (const [over, want] of cases) t.equal(m.match(input(over))?.index, want, `${name}: ${JSON.stringify(over)} -> ${want}`);
  }
  t.throws(() => compileRules(rules({ ruleSet: ['nope'] }), sets), /unknown rule_set "nope"/);
});

t.test('a swapped set changes the answer without compiling the rules again', async (t) => {
  const s = live('s', 'old.example');
  const m = compileRules(rules({ ruleSet: ['s'] }), new Map([['s', s]]));
  t.equal(m.match(input({ hostname: 'old.example' }))?.index, 0);
  s.swap(parseTextRuleSet('s', 's.txt', 'new.example'));
  t.equal(m.match(input({ hostname: 'old.example' })), undefined);
  t.equal(m.match(input({ hostname: 'new.example' }))?.index, 0);
  t.equal(s.generation, 1);
});

t.test('compiled and naive agree with rule-sets and owners', async (t) => {
  const names = ['a.example', 'b.a.example', 'c.example', 'x.c.example'];
  const sets = new Map([
    ['s1', live('s1', '+.a.example\n198.51.100.0/25')],
    ['s2', live('s2', '.c.example\nkeyword:b.a')],
  ]);
  const match = fc.record(
    {
      ruleSet: fc.subarray(['s1', 's2'], { minLength: 1 }),
      domain: fc.subarray(names, { minLength: 1 }),
      user: fc.constantFrom([{ from: 1, to: 1 }], [{ from: 1, to: 5 }]),
      process: fc.constantFrom([{ name: 'curl' }], [{ path: '/usr/bin/wget' }]),
      port: fc.constantFrom([{ from: 80, to: 80 }], [{ from: 1, to: 442 }]),
    },
    { requiredKeys: [] },
  );
  const owner = fc.option(
    fc.record({ uid: fc.integer({ min: 0, max: 6 }), exe: fc.constantFrom('/usr/bin/curl', '/usr/bin/wget', '/bin/sh'), comm: fc.constantFrom('curl', 'wget', 'sh') }),
    { nil: undefined },
  );
  const inp = fc.record({
    hostname: fc.option(fc.constantFrom(...names, 'z.example'), { nil: undefined }),
    dstAddress: fc.constantFrom('198.51.100.1', '198.51.100.200', '203.0.113.1'),
    dstPort: fc.constantFrom(80, 443),
    owner,
  });
  let hits = 0;
  fc.assert(
    fc.property(fc.array(match, { minLength: 1, maxLength: 8 }), fc.array(inp, { minLength: 1, maxLength: 10 }), (ms, ins) => {
      const rs = rules(...(ms as RuleMatch[]));
      const n = new NaiveMatcher(rs, sets);
      const c = compileRules(rs, sets);
      for (const i of ins) {
        const x = input(i as Partial<MatchInput>);
        const want = n.match(x)?.index;
        if (want !== undefined) hits++;
        if (c.match(x)?.index !== want) return false;
      }
      return true;
    }),
    { numRuns: 400, seed: 18 },
  );
  t.ok(hits > 100, `the vocabulary matches often enough (${hits} hits)`);
});

t.test('the policy asks for the owner only where a rule could read it', async (t) => {
  const sets = new Map([['p', new LiveRuleSet('p', 'p.json', parseTextRuleSet('p', 'p.txt', 'a.example'))]]);
  const rs: Rule[] = [
    { index: 0, match: { domain: ['first.example'] }, action: { type: 'direct' } },
    { index: 1, match: { user: [{ from: 1000, to: 1000 }] }, action: { type: 'reject' } },
    { index: 2, match: { process: [{ name: 'curl' }] }, action: { type: 'reject' } },
    { index: 3, match: { ruleSet: ['p'] }, action: { type: 'reject' } },
  ];
  const p = new Policy(rs, new Map(), new Map(), new Map(), sets);
  t.equal(p.ownerNeed(input({ hostname: 'first.example' })), 0, 'decided before any owner rule');
  t.equal(p.ownerNeed(input({ hostname: 'other.example' })), 2, 'the process rule may decide');
  t.equal(new Policy(rs.slice(0, 2), new Map(), new Map()).ownerNeed(input()), 1, 'a uid is enough');
  t.equal(new Policy([], new Map(), new Map()).ownerNeed(input()), 0);
  const byPort: Rule[] = [
    { index: 0, match: { port: [{ from: 80, to: 80 }], process: [{ name: 'wget' }] }, action: { type: 'reject' } },
    { index: 1, match: { port: [{ from: 81, to: 81 }], user: [{ from: 1, to: 1 }] }, action: { type: 'reject' } },
  ];
  const pp = new Policy(byPort, new Map(), new Map());
  t.equal(pp.ownerNeed(input({ dstPort: 443 })), 0, 'no reader could match this port: no lookup');
  t.equal(pp.ownerNeed(input({ dstPort: 81 })), 1, 'only the uid reader could');
  t.equal(pp.ownerNeed(input({ dstPort: 80 })), 2);
  t.ok(p.namesMatter, 'a set of names makes names matter');
});

t.test('config: rule_sets, rule_set, user and process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rsc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ads.txt'), 'ads.example\n');
  writeFileSync(join(dir, 'bad.txt'), 'ok.example\nnot a name\n');
  const ok = configSchema.safeParse({
    rule_sets: { ads: join(dir, 'ads.txt'), cn: { path: join(dir, 'ads.txt'), format: 'text' } },
    rules: [
      { rule_set: 'ads', action: 'reject' },
      { user: ['root', 1000, '2000-2999'], process: ['curl', '/usr/bin/wget'], action: 'direct' },
    ],
  });
  t.ok(ok.success, JSON.stringify(ok.error?.issues));
  const rs = rulesOf(ok.data!);
  t.same(rs[0].match.ruleSet, ['ads']);
  t.same(rs[1].match.user, [
    { from: 0, to: 0 },
    { from: 1000, to: 1000 },
    { from: 2000, to: 2999 },
  ]);
  t.same(rs[1].match.process, [{ name: 'curl' }, { path: '/usr/bin/wget' }]);
  t.ok(
    ruleSetsOf(ok.data!)
      .get('ads')!
      .matches(new (await import('../../../../src/proxy/rules/set-query.js')).SetQuery(input({ hostname: 'ads.example' }))),
  );

  const bad = configSchema.safeParse({
    rule_sets: { a: 'x.txt' },
    rules: [
      { rule_set: 'b', action: 'direct' },
      { user: 'no-such-user-here', action: 'direct' },
      { user: '9-1', action: 'direct' },
      { process: 'bin/curl', action: 'direct' },
    ],
  });
  t.notOk(bad.success);
  const msgs = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  t.match(msgs.join('\n'), /rules\.0\.rule_set: unknown rule_set "b" \(known: a\)/);
  t.match(msgs.join('\n'), /rules\.1\.user: no user "no-such-user-here"/);
  t.match(msgs.join('\n'), /rules\.2\.user: a uid range is from-to/);
  t.match(msgs.join('\n'), /rules\.3\.process: a process is an executable name/);

  const broken = configSchema.parse({ rule_sets: { bad: join(dir, 'bad.txt') } });
  t.throws(() => ruleSetsOf(broken), { message: `rule_sets.bad: ${join(dir, 'bad.txt')}:2: not a domain name (the character " ", which no DNS name holds): "not a name"` });
  const { runtimeProblems } = await import('../../../../src/config/build-policy.js');
  t.throws(() => runtimeProblems(broken), /bad\.txt:2:/, 'check-config: a set that does not parse is an error');
  const missing = configSchema.parse({ rule_sets: { gone: join(dir, 'missing.txt') } });
  t.match(runtimeProblems(missing), [/rule_sets\.gone: cannot read .*missing\.txt: ENOENT/], 'a missing file is a warning (it may be there where the gateway runs)');
});

t.test('a watched file: a good change is swapped in, a bad one keeps the last good set and says where', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rsw-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'set.txt');
  writeFileSync(file, 'one.example\n');
  const sets = ruleSetsOf({ rule_sets: { s: { path: file, format: undefined } } });
  const s = sets.get('s')!;
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  const reloaded: string[] = [];
  const stop = watchRuleSets(sets, { log, settleMs: 50, onReload: (r) => reloaded.push(r.name) });
  t.teardown(stop);
  const q = async (name: string) => s.matches(new (await import('../../../../src/proxy/rules/set-query.js')).SetQuery(input({ hostname: name })));
  const until = async (what: () => boolean) => {
    for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 25));
  };

  // replaced by rename, as editors and config managers do
  writeFileSync(join(dir, '.tmp'), 'two.example\n');
  renameSync(join(dir, '.tmp'), file);
  await until(() => reloaded.length > 0);
  t.same(reloaded, ['s'], 'the reload hook ran');
  t.ok(await q('two.example'), 'the new set');
  t.notOk(await q('one.example'));

  writeFileSync(file, 'three.example\nbad..name\n');
  await until(() => lines.some((l) => l.msg === 'rule-set not reloaded: the last good set stays'));
  const warn = lines.find((l) => l.msg === 'rule-set not reloaded: the last good set stays')!;
  t.equal(warn.line, 2);
  t.match(String(warn.error), `${file}:2: not a domain name`);
  t.ok(await q('two.example'), 'the last good set stays');
  t.notOk(await q('three.example'), 'nothing of the broken file');
  t.equal(reloaded.length, 1);

  writeFileSync(file, 'four.example\n');
  await until(() => reloaded.length > 1);
  t.ok(await q('four.example'), 'fixed: swapped in');
});
