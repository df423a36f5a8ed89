// The rule matcher: CIDR helpers, hand-written semantics cases (run against both matchers),
// a property test that the compiled matcher agrees with the naive one, and a 10,000-rule set.
import t from 'tap';
import fc from 'fast-check';
import { addressBytes, cidrContains, cidrMatch } from '../../../../src/proxy/rules/cidr-match.js';
import { compileRules } from '../../../../src/proxy/rules/compiled-matcher.js';
import { NaiveMatcher } from '../../../../src/proxy/rules/naive-matcher.js';
import type { CidrMatch, MatchInput, Rule, RuleMatch, RuleMatcher, SniffedProtocol } from '../../../../src/proxy/rules/rule-types.js';

function cidr(text: string): CidrMatch {
  const c = cidrMatch(text);
  if (!c) throw new Error(`bad cidr ${text}`);
  return c;
}

function rules(...matches: RuleMatch[]): Rule[] {
  return matches.map((match, index) => ({ index, match, action: { type: 'direct' } }));
}

function input(over: Partial<MatchInput> = {}): MatchInput {
  return { protocol: 'tls', dstAddress: '203.0.113.9', dstPort: 443, srcAddress: '192.0.2.50', ...over };
}

const both = (rs: Rule[]): [string, RuleMatcher][] => [
  ['naive', new NaiveMatcher(rs)],
  ['compiled', compileRules(rs)],
];

/** Runs each [input, expected rule index or undefined] against both matchers. */
function expectMatches(t: Tap, rs: Rule[], cases: [Partial<MatchInput>, number | undefined][]): void {
  for (const [name, m] of both(rs)) {
    for (const [over, want] of cases) {
      t.equal(m.match(input(over))?.index, want, `${name}: ${JSON.stringify(over)} -> ${want}`);
    }
  }
}
type Tap = { equal(found: unknown, wanted: unknown, msg: string): unknown };

t.test('cidrMatch and addressBytes', async (t) => {
  const a = cidr('10.1.2.3/8');
  t.same([...a.bytes], [10, 0, 0, 0], 'host bits masked');
  t.equal(a.family, 4);
  t.equal(a.prefix, 8);
  t.equal(a.text, '10.1.2.3/8');
  t.equal(cidr('192.0.2.7').prefix, 32, 'bare IPv4 is /32');
  t.equal(cidr('2001:db8::1').prefix, 128, 'bare IPv6 is /128');
  const v6 = cidr('2001:db8:ffff::/33');
  t.same([...v6.bytes], [0x20, 0x01, 0x0d, 0xb8, 0x80, ...new Array(11).fill(0)]);
  t.equal(v6.family, 6);
  const mapped = cidr('::ffff:10.0.0.0/104');
  t.same({ family: mapped.family, prefix: mapped.prefix, bytes: [...mapped.bytes] }, { family: 4, prefix: 8, bytes: [10, 0, 0, 0] });
  t.equal(cidr('::/0').family, 6, 'a prefix shorter than the mapped range stays IPv6');
  for (const bad of ['10.0.0.0/33', '::/129', 'nope', '10.0.0.0/', '10.0.0.0/x', 'fe80::1%eth0/64', '']) {
    t.equal(cidrMatch(bad), null, `rejects ${JSON.stringify(bad)}`);
  }

  t.same([...addressBytes('192.0.2.1')!], [192, 0, 2, 1]);
  t.same([...addressBytes('::ffff:192.0.2.1')!], [192, 0, 2, 1], 'mapped -> 4 bytes');
  t.same([...addressBytes('::FFFF:c000:0201')!], [192, 0, 2, 1], 'mapped in hex');
  t.same([...addressBytes('1:2:3:4:5:6:7:8')!], [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  t.same([...addressBytes('::1')!], [...new Array(15).fill(0), 1]);
  t.same([...addressBytes('fe80::1%eth0')!], [0xfe, 0x80, ...new Array(13).fill(0), 1], 'zone id ignored');
  t.same([...addressBytes('1::')!], [0, 1, ...new Array(14).fill(0)]);
  t.equal(addressBytes('example.com'), null);
  t.equal(addressBytes(''), null);

  t.ok(cidrContains(cidr('10.0.0.0/8'), addressBytes('10.255.0.1')!));
  t.notOk(cidrContains(cidr('10.0.0.0/8'), addressBytes('11.0.0.1')!));
  t.ok(cidrContains(cidr('10.1.2.128/25'), addressBytes('10.1.2.200')!));
  t.notOk(cidrContains(cidr('10.1.2.128/25'), addressBytes('10.1.2.127')!));
  t.ok(cidrContains(cidr('0.0.0.0/0'), addressBytes('8.8.8.8')!));
  t.notOk(cidrContains(cidr('0.0.0.0/0'), addressBytes('::2')!), 'families never mix');
  t.notOk(cidrContains(cidr('::/0'), addressBytes('8.8.8.8')!));
  t.ok(cidrContains(cidr('2001:db8::/32'), addressBytes('2001:db8:1::5')!));
  t.notOk(cidrContains(cidr('2001:db8::/33'), addressBytes('2001:db8:8000::')!));
});

t.test('exact domain', async (t) => {
  expectMatches(t, rules({ domain: ['a.example'] }), [
    [{ hostname: 'a.example' }, 0],
    [{ hostname: 'A.Example.' }, 0],
    [{ hostname: 'b.a.example' }, undefined],
    [{ hostname: 'example' }, undefined],
    [{}, undefined],
  ]);
});

t.test('domain suffix boundaries', async (t) => {
  expectMatches(t, rules({ domainSuffix: ['corp.example'] }), [
    [{ hostname: 'corp.example' }, 0],
    [{ hostname: 'a.b.corp.example' }, 0],
    [{ hostname: 'x.CORP.example.' }, 0],
    [{ hostname: 'xcorp.example' }, undefined],
    [{ hostname: 'corp.example.org' }, undefined],
    [{ hostname: 'example' }, undefined],
  ]);
});

t.test('leading-dot suffix matches only names below', async (t) => {
  expectMatches(t, rules({ domainSuffix: ['.corp.example'] }), [
    [{ hostname: 'corp.example' }, undefined],
    [{ hostname: 'a.corp.example' }, 0],
    [{ hostname: 'a.b.corp.example' }, 0],
    [{ hostname: 'xcorp.example' }, undefined],
  ]);
});

t.test('config values are normalised at compile time', async (t) => {
  expectMatches(t, rules({ domain: ['Mixed.Example.'] }, { domainSuffix: ['Up.Example.'] }, { domainKeyword: ['TRACK'] }), [
    [{ hostname: 'mixed.example' }, 0],
    [{ hostname: 'a.up.example' }, 1],
    [{ hostname: 'tracker.test' }, 2],
  ]);
});

t.test('domain keyword', async (t) => {
  expectMatches(t, rules({ domainKeyword: ['ads', 'track'] }), [
    [{ hostname: 'ads.example' }, 0],
    [{ hostname: 'myads' }, 0],
    [{ hostname: 'a.tracker.example' }, 0],
    [{ hostname: 'ad.example' }, undefined],
    [{ hostname: 'tra.ck' }, undefined],
    [{}, undefined],
  ]);
});

t.test('the domain keys form one group', async (t) => {
  const rs = rules({ domain: ['exact.test'], domainSuffix: ['suffix.test'], domainKeyword: ['kw'], port: [{ from: 443, to: 443 }] });
  expectMatches(t, rs, [
    [{ hostname: 'exact.test' }, 0],
    [{ hostname: 'a.suffix.test' }, 0],
    [{ hostname: 'kw.other' }, 0],
    [{ hostname: 'kw.other', dstPort: 80 }, undefined],
    [{ hostname: 'other.test' }, undefined],
    [{}, undefined],
  ]);
});

t.test('IPv4 and IPv6 destination CIDRs', async (t) => {
  const rs = rules({ cidr: [cidr('10.0.0.0/8'), cidr('2001:db8::/32')] }, { cidr: [cidr('192.0.2.0/24')] });
  expectMatches(t, rs, [
    [{ dstAddress: '10.9.8.7' }, 0],
    [{ dstAddress: '2001:db8:abcd::1' }, 0],
    [{ dstAddress: '2001:db9::1' }, undefined],
    [{ dstAddress: '192.0.2.77' }, 1],
    [{ dstAddress: '192.0.3.1' }, undefined],
    [{ dstAddress: 'not-an-address' }, undefined],
  ]);
});

t.test('IPv4-mapped IPv6 addresses match IPv4 CIDRs', async (t) => {
  const rs = rules({ cidr: [cidr('10.0.0.0/8')] }, { cidr: [cidr('::ffff:192.0.2.0/120')] }, { cidr: [cidr('::/0')] });
  expectMatches(t, rs, [
    [{ dstAddress: '::ffff:10.1.2.3' }, 0],
    [{ dstAddress: '::ffff:a01:203' }, 0],
    [{ dstAddress: '192.0.2.9' }, 1],
    [{ dstAddress: '::ffff:192.0.2.9' }, 1],
    [{ dstAddress: '::ffff:8.8.8.8' }, undefined],
    [{ dstAddress: '2001:db8::1' }, 2],
  ]);
});

t.test('port ranges are inclusive', async (t) => {
  const rs = rules(
    {
      port: [
        { from: 8000, to: 8080 },
        { from: 22, to: 22 },
      ],
    },
    { port: [{ from: 1, to: 1023 }] },
  );
  expectMatches(t, rs, [
    [{ dstPort: 8000 }, 0],
    [{ dstPort: 8080 }, 0],
    [{ dstPort: 8081 }, undefined],
    [{ dstPort: 7999 }, undefined],
    [{ dstPort: 22 }, 0],
    [{ dstPort: 443 }, 1],
    [{ dstPort: 1023 }, 1],
    [{ dstPort: 1024 }, undefined],
  ]);
});

t.test('protocol', async (t) => {
  expectMatches(t, rules({ protocol: ['http', 'udp'] }), [
    [{ protocol: 'http' }, 0],
    [{ protocol: 'udp' }, 0],
    [{ protocol: 'quic' }, 0],
    [{ protocol: 'unknown', transport: 'udp' }, 0],
    [{ protocol: 'unknown' }, undefined],
    [{ protocol: 'tls' }, undefined],
    [{ protocol: 'tcp' }, undefined],
  ]);
  expectMatches(t, rules({ protocol: ['unknown'], port: [80, 443].map((p) => ({ from: p, to: p })) }, { protocol: ['quic'] }), [
    [{ protocol: 'unknown', dstPort: 443 }, 0],
    [{ protocol: 'unknown', transport: 'udp', dstPort: 443 }, 0],
    [{ protocol: 'unknown', dstPort: 22 }, undefined],
    [{ protocol: 'tls', dstPort: 443 }, undefined],
    [{ protocol: 'quic', dstPort: 443 }, 1],
    [{ protocol: 'quic', dstPort: 8443 }, 1],
    [{ protocol: 'udp', dstPort: 8443 }, undefined],
  ]);
});

t.test('source CIDR', async (t) => {
  const rs = rules({ sourceCidr: [cidr('192.168.1.0/24')] }, { sourceCidr: [cidr('fd00::/8')], protocol: ['udp'] });
  expectMatches(t, rs, [
    [{ srcAddress: '192.168.1.20' }, 0],
    [{ srcAddress: '::ffff:192.168.1.20' }, 0],
    [{ srcAddress: '192.168.2.20' }, undefined],
    [{ srcAddress: 'fd12::1', protocol: 'udp' }, 1],
    [{ srcAddress: 'fd12::1', protocol: 'tcp' }, undefined],
    [{ dstAddress: '192.168.1.20' }, undefined],
  ]);
});

t.test('all groups must match', async (t) => {
  const rs = rules({
    domainSuffix: ['svc.test'],
    cidr: [cidr('10.0.0.0/8')],
    sourceCidr: [cidr('192.0.2.0/24')],
    port: [{ from: 443, to: 443 }],
    protocol: ['tls'],
  });
  const ok = { hostname: 'a.svc.test', dstAddress: '10.0.0.1' };
  expectMatches(t, rs, [
    [ok, 0],
    [{ ...ok, hostname: 'a.svc.other' }, undefined],
    [{ ...ok, hostname: undefined }, undefined],
    [{ ...ok, dstAddress: '11.0.0.1' }, undefined],
    [{ ...ok, srcAddress: '198.51.100.1' }, undefined],
    [{ ...ok, dstPort: 80 }, undefined],
    [{ ...ok, protocol: 'http' }, undefined],
  ]);
});

t.test('empty rules and empty lists', async (t) => {
  expectMatches(t, rules(), [[{}, undefined]]);
  expectMatches(t, rules({}), [
    [{}, 0],
    [{ hostname: 'x.test', dstAddress: '::1', protocol: 'udp' }, 0],
  ]);
  // An empty list is the same as an absent key.
  expectMatches(t, rules({ domain: [], cidr: [], port: [{ from: 80, to: 80 }] }), [
    [{ dstPort: 80 }, 0],
    [{ dstPort: 81 }, undefined],
  ]);
});

t.test('first match wins', async (t) => {
  const rs = rules(
    { domain: ['x.corp.example'], port: [{ from: 22, to: 22 }] },
    { cidr: [cidr('10.0.0.0/8')] },
    { domainKeyword: ['corp'] },
    { domainSuffix: ['corp.example'] },
    { domain: ['x.corp.example'] },
    { protocol: ['tls'] },
    {},
  );
  expectMatches(t, rs, [
    [{ hostname: 'x.corp.example', dstPort: 22, dstAddress: '10.0.0.1' }, 0],
    [{ hostname: 'x.corp.example', dstAddress: '10.0.0.1' }, 1],
    [{ hostname: 'x.corp.example' }, 2],
    [{ hostname: 'y.example' }, 5],
    [{ hostname: 'y.example', protocol: 'http' }, 6],
  ]);
  const matched = compileRules(rs).match(input({ hostname: 'x.corp.example' }));
  t.equal(matched, rs[2], 'returns the rule object itself');
});

// Small vocabularies, so that random rules and inputs hit each other often.
const NAMES = ['a.com', 'b.a.com', 'c.b.a.com', 'xa.com', 'a.com.evil.org', 'evil.org', 'bar.net', 'foo.bar.net', 'com', 'localhost', 'ads.tracker.io'];
const SUFFIXES = ['a.com', '.a.com', 'com', '.com', 'A.Com.', 'bar.net', '.bar.net', 'org', 'b.a.com', '.b.a.com', 'io', 'localhost'];
const KEYWORDS = ['a', 'com', 'bar', 'b.a', 'xa', 'evil', '.c', 'track', 'ADS', 'a.com.'];
const CIDRS = [
  '10.0.0.0/8',
  '10.1.0.0/16',
  '10.1.2.0/24',
  '10.1.2.128/25',
  '10.1.2.3',
  '0.0.0.0/0',
  '192.168.1.0/24',
  '::/0',
  '2001:db8::/32',
  '2001:db8:1::/48',
  '2001:db8::1',
  '::ffff:10.0.0.0/104',
  'fe80::/10',
  '::ffff:0:0/96',
].map(cidr);
const ADDRESSES = [
  '10.1.2.3',
  '10.1.2.200',
  '10.2.0.1',
  '192.168.1.5',
  '8.8.8.8',
  '2001:db8::1',
  '2001:db8:1::5',
  '2001:db9::1',
  '::ffff:10.1.2.3',
  '::ffff:8.8.8.8',
  'fe80::1',
  '::1',
  'not-an-ip',
];
const PORTS = [22, 53, 80, 443, 8080, 8443, 9000];
const PROTOCOLS: SniffedProtocol[] = ['http', 'tls', 'tcp', 'udp', 'quic', 'unknown'];

// Each key is absent most of the time, so that a rule has one or two keys and often matches.
const key = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 7 }, { arbitrary: fc.array(arb, { maxLength: 3 }), weight: 2 });
const portRange = fc.oneof(
  fc.constantFrom(...PORTS).map((p) => ({ from: p, to: p })),
  fc.constantFrom({ from: 80, to: 90 }, { from: 1, to: 1024 }, { from: 8000, to: 9000 }, { from: 443, to: 8443 }, { from: 90, to: 80 }),
);
const ruleMatch: fc.Arbitrary<RuleMatch> = fc.record({
  domain: key(fc.constantFrom(...NAMES, 'A.COM.')),
  domainSuffix: key(fc.constantFrom(...SUFFIXES)),
  domainKeyword: key(fc.constantFrom(...KEYWORDS)),
  cidr: key(fc.constantFrom(...CIDRS)),
  port: key(portRange),
  protocol: key(fc.constantFrom(...PROTOCOLS)),
  sourceCidr: key(fc.constantFrom(...CIDRS)),
});
const ruleSet = fc.array(ruleMatch, { maxLength: 60 }).map((ms) => ms.map((match, index): Rule => ({ index, match, action: { type: 'direct' } })));
const hostname = fc.option(
  fc.oneof(
    fc.constantFrom(...NAMES),
    fc.constantFrom(...NAMES).map((n) => n.toUpperCase() + '.'),
    fc.constantFrom(...NAMES).chain((n) => fc.constantFrom('x.', 'ab', 'x').map((p) => p + n)),
  ),
  { nil: undefined, freq: 5 },
);
const matchInput: fc.Arbitrary<MatchInput> = fc.record({
  hostname,
  protocol: fc.constantFrom(...PROTOCOLS),
  transport: fc.constantFrom(undefined, 'tcp' as const, 'udp' as const),
  dstAddress: fc.constantFrom(...ADDRESSES),
  dstPort: fc.oneof(fc.constantFrom(...PORTS), fc.integer({ min: 1, max: 65535 })),
  srcAddress: fc.constantFrom(...ADDRESSES),
});

t.test('compiled matcher agrees with the naive matcher', async (t) => {
  let inputs = 0;
  let matched = 0;
  let laterMatch = 0;
  try {
    fc.assert(
      fc.property(ruleSet, fc.array(matchInput, { minLength: 1, maxLength: 12 }), (rs, ins) => {
        const naive = new NaiveMatcher(rs);
        const compiled = compileRules(rs);
        for (const inp of ins) {
          const want = naive.match(inp);
          const got = compiled.match(inp);
          if (got?.index !== want?.index) return false;
          inputs++;
          if (want) matched++;
          if (want && want.index > 0) laterMatch++;
        }
        return true;
      }),
      { numRuns: 3000, seed: 20240611 },
    );
    t.pass(`agreed on ${inputs} inputs`);
  } catch (err) {
    t.fail(String(err instanceof Error ? err.message : err));
  }
  // Guard against a vocabulary that never matches (which would make the property vacuous).
  t.ok(matched > inputs / 4, `${matched} of ${inputs} inputs matched a rule`);
  t.ok(laterMatch > inputs / 10, `${laterMatch} matched a rule other than the first`);
});

t.test('10,000 rules', async (t) => {
  const ms: RuleMatch[] = [];
  for (let i = 0; i < 10_000; i++) {
    const hi = (i >> 8) & 0xff;
    const lo = i & 0xff;
    if (i % 3 === 0) ms.push({ domain: [`host${i}.example.com`] });
    else if (i % 3 === 1) ms.push({ domainSuffix: [`zone${i}.example.net`], port: [{ from: 443, to: 443 }] });
    else ms.push({ cidr: [cidr(`10.${hi}.${lo}.0/24`), cidr(`2001:db8:${i.toString(16)}::/48`)] });
  }
  ms.push({ domainSuffix: ['example.com'] }, { cidr: [cidr('10.0.0.0/8')] }, {});
  const rs = rules(...ms);
  const compiled = compileRules(rs);
  const naive = new NaiveMatcher(rs);
  const cases: [Partial<MatchInput>, number][] = [
    [{ hostname: 'host9999.example.com' }, 9999],
    [{ hostname: 'host3.example.com' }, 3],
    [{ hostname: 'host4.example.com' }, 10_000],
    [{ hostname: 'a.b.zone7000.example.net' }, 7000],
    [{ hostname: 'a.b.zone7000.example.net', dstPort: 80 }, 10_002],
    [{ dstAddress: '10.39.14.77' }, 9998], // 9998 = 39 * 256 + 14
    [{ dstAddress: '2001:db8:5::1' }, 5],
    [{ dstAddress: '10.200.0.1' }, 10_001],
    [{ hostname: 'unrelated.test', dstAddress: '8.8.8.8' }, 10_002],
  ];
  for (const [over, want] of cases) {
    const inp = input(over);
    t.equal(compiled.match(inp)?.index, want, `compiled ${JSON.stringify(over)}`);
    t.equal(naive.match(inp)?.index, want, `naive ${JSON.stringify(over)}`);
  }
});
