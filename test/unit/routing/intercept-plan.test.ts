// The REDIRECT and TPROXY plans are data: the nftables text and the ip steps,
// each with its undo. TPROXY takes UDP beside TCP, on the same port and mark.
import t from 'tap';
import { NFT_TABLE, planIntercept, type InterceptPlanConfig } from '../../../src/routing/intercept-plan.js';
import type { NftStep } from '../../../src/routing/route-plan.js';

const base: InterceptPlanConfig = { kind: 'tproxy', port: 15001, uid: 65534, excludes: ['10.0.0.0/8', '2001:db8:ff::/48'], table: 2023, priority: 9000 };
const nftOf = (cfg: InterceptPlanConfig) => planIntercept(cfg).find((s): s is NftStep => s.kind === 'nft')!;

t.test(
  'tproxy: TCP and UDP, IPv4 and IPv6, to the one port with the one mark; replies of flows it did not take pass (an excluded server answering); the input chain guards the port for both',
  async (t) => {
    const nft = nftOf(base);
    t.equal(
      nft.script,
      [
        `table inet ${NFT_TABLE} {`,
        '  chain prerouting {',
        '    type filter hook prerouting priority mangle; policy accept;',
        '    fib daddr type local return',
        '    ip daddr { 127.0.0.0/8, 10.0.0.0/8 } return',
        '    ip6 daddr { ::1/128, 2001:db8:ff::/48 } return',
        '    ct direction reply return',
        '    meta l4proto tcp socket transparent 1 meta mark set 2023 accept',
        '    meta nfproto ipv4 meta l4proto tcp tproxy ip to :15001 meta mark set 2023 accept',
        '    meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :15001 meta mark set 2023 accept',
        '    meta nfproto ipv4 meta l4proto udp tproxy ip to :15001 meta mark set 2023 accept',
        '    meta nfproto ipv6 meta l4proto udp tproxy ip6 to :15001 meta mark set 2023 accept',
        '  }',
        '  chain input {',
        '    type filter hook input priority filter; policy accept;',
        '    tcp dport 15001 meta mark != 2023 iifname != "lo" drop',
        '    udp dport 15001 meta mark != 2023 iifname != "lo" drop',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    t.strictSame(nft.undo, ['delete', 'table', 'inet', NFT_TABLE]);
    t.match(nft.desc, /TCP and UDP sent by TPROXY to :15001/);
  },
);

t.test('tproxy: local routes and fwmark rules per family come first, each with its undo; the table last', async (t) => {
  const steps = planIntercept(base);
  t.strictSame(
    steps.slice(0, 4).map((s) => (s.kind === 'ip' ? [s.do, s.undo] : null)),
    [
      [
        ['-4', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '2023'],
        ['-4', 'route', 'del', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '2023'],
      ],
      [
        ['-6', 'route', 'add', 'local', '::/0', 'dev', 'lo', 'table', '2023'],
        ['-6', 'route', 'del', 'local', '::/0', 'dev', 'lo', 'table', '2023'],
      ],
      [
        ['-4', 'rule', 'add', 'fwmark', '2023', 'lookup', '2023', 'priority', '9000'],
        ['-4', 'rule', 'del', 'fwmark', '2023', 'lookup', '2023', 'priority', '9000'],
      ],
      [
        ['-6', 'rule', 'add', 'fwmark', '2023', 'lookup', '2023', 'priority', '9000'],
        ['-6', 'rule', 'del', 'fwmark', '2023', 'lookup', '2023', 'priority', '9000'],
      ],
    ],
  );
  t.equal(steps.length, 5);
  t.equal(steps[4].kind, 'nft');
});

t.test('redirect stays TCP only (UDP needs TPROXY) and exempts the data plane by uid', async (t) => {
  const steps = planIntercept({ ...base, kind: 'redirect', excludes: [] });
  t.equal(steps.length, 1);
  const script = (steps[0] as NftStep).script;
  t.notMatch(script, /udp/);
  t.match(script, /meta skuid 65534 return/);
  t.match(script, /meta l4proto tcp redirect to :15001/);
});

t.test('bad port and bad exclude are refused', async (t) => {
  t.throws(() => planIntercept({ ...base, port: 0 }), RangeError);
  t.throws(() => planIntercept({ ...base, port: 65536 }), RangeError);
  t.throws(() => planIntercept({ ...base, excludes: ['not-a-cidr'] }), RangeError);
});
