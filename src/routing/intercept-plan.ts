// The REDIRECT and TPROXY plans, PURE: one nftables table of our own (inet,
// so IPv4 and IPv6 alike) and its undo (delete the table); TPROXY adds a
// fwmark rule and a local route table per family. Nothing else on the
// system is touched, so after the undo the ruleset is the one found before.
//
// redirect   prerouting (nat)  TCP from other hosts, routed through this one
//            output (nat)      TCP from this host's own programs, except the
//                              data plane's (by uid: its upstream sockets go out as they are)
// tproxy     prerouting (mangle) TCP and UDP routed through this host go to the
//                              transparent listener / datagram socket (same
//                              port), destination kept; marked packets are
//                              delivered locally (rule + local table)
// both       input: the listener takes intercepted traffic only.
// Local destinations and --exclude prefixes are left alone.
import { parseCidr } from '../cidr.js';
import type { IpStep, NftStep, Step } from './route-plan.js';

export const NFT_TABLE = 'tunsteer';

export interface InterceptPlanConfig {
  kind: 'redirect' | 'tproxy';
  /** The listener's port. */
  port: number;
  /** The data plane's uid: its own connections are never redirected. */
  uid: number;
  /** IPv4 and IPv6 CIDRs that keep the direct path. */
  excludes: string[];
  /** tproxy: the routing table for local delivery, also the fwmark. */
  table: number;
  /** tproxy: the fwmark rules' priority. */
  priority: number;
}

export function planIntercept(cfg: InterceptPlanConfig): Step[] {
  if (!Number.isInteger(cfg.port) || cfg.port < 1 || cfg.port > 65535) throw new RangeError(`listener port ${cfg.port} not in 1..65535`);
  const v4 = ['127.0.0.0/8'];
  const v6 = ['::1/128'];
  for (const c of cfg.excludes) {
    const p = parseCidr(c);
    if (!p) throw new RangeError(`exclude "${c}" is not a CIDR`);
    (p.family === 4 ? v4 : v6).push(p.text);
  }
  const skip = ['fib daddr type local return', `ip daddr { ${v4.join(', ')} } return`, `ip6 daddr { ${v6.join(', ')} } return`].map((l) => `    ${l}`);
  const mark = cfg.table;
  const chains =
    cfg.kind === 'redirect'
      ? [
          '  chain prerouting {',
          '    type nat hook prerouting priority dstnat; policy accept;',
          ...skip,
          `    meta l4proto tcp redirect to :${cfg.port}`,
          '  }',
          '  chain output {',
          '    type nat hook output priority -100; policy accept;',
          `    meta skuid ${cfg.uid} return`,
          ...skip,
          `    meta l4proto tcp redirect to :${cfg.port}`,
          '  }',
          '  chain input {',
          '    type filter hook input priority filter; policy accept;',
          `    tcp dport ${cfg.port} ct status dnat accept`,
          `    tcp dport ${cfg.port} iifname != "lo" drop`,
          '  }',
        ]
      : [
          '  chain prerouting {',
          '    type filter hook prerouting priority mangle; policy accept;',
          ...skip,
          // replies of flows the gateway did not take (an --exclude'd destination, or any flow
          // routed through untouched) are not new connections: TPROXY would swallow them
          '    ct direction reply return',
          `    meta l4proto tcp socket transparent 1 meta mark set ${mark} accept`,
          `    meta nfproto ipv4 meta l4proto tcp tproxy ip to :${cfg.port} meta mark set ${mark} accept`,
          `    meta nfproto ipv6 meta l4proto tcp tproxy ip6 to :${cfg.port} meta mark set ${mark} accept`,
          `    meta nfproto ipv4 meta l4proto udp tproxy ip to :${cfg.port} meta mark set ${mark} accept`,
          `    meta nfproto ipv6 meta l4proto udp tproxy ip6 to :${cfg.port} meta mark set ${mark} accept`,
          '  }',
          '  chain input {',
          '    type filter hook input priority filter; policy accept;',
          `    tcp dport ${cfg.port} meta mark != ${mark} iifname != "lo" drop`,
          `    udp dport ${cfg.port} meta mark != ${mark} iifname != "lo" drop`,
          '  }',
        ];
  const nft: NftStep = {
    kind: 'nft',
    script: [`table inet ${NFT_TABLE} {`, ...chains, '}', ''].join('\n'),
    undo: ['delete', 'table', 'inet', NFT_TABLE],
    desc: `nftables table inet ${NFT_TABLE}: ${cfg.kind === 'redirect' ? 'TCP redirected' : 'TCP and UDP sent by TPROXY'} to :${cfg.port}`,
  };
  if (cfg.kind === 'redirect') return [nft];
  const ip = (fam: '-4' | '-6', obj: string[], desc: string): IpStep => ({
    kind: 'ip',
    do: [fam, ...obj.slice(0, 1), 'add', ...obj.slice(1)],
    undo: [fam, ...obj.slice(0, 1), 'del', ...obj.slice(1)],
    desc,
  });
  const t = String(cfg.table);
  return [
    ip('-4', ['route', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', t], `table ${t}: every IPv4 address is local (TPROXY delivery)`),
    ip('-6', ['route', 'local', '::/0', 'dev', 'lo', 'table', t], `table ${t}: every IPv6 address is local`),
    ip('-4', ['rule', 'fwmark', t, 'lookup', t, 'priority', String(cfg.priority)], `packets marked ${t} are delivered locally`),
    ip('-6', ['rule', 'fwmark', t, 'lookup', t, 'priority', String(cfg.priority)], 'the same for IPv6'),
    nft,
  ];
}
