// The REDIRECT plan, PURE: one nftables table of our own (inet, so IPv4 and
// IPv6 alike) that redirects TCP to the gateway's listener, and its undo
// (delete the table). Nothing else on the system is touched, so the ruleset
// after the undo is the one found before.
//
//   prerouting (nat)  TCP from other hosts, routed through this one (a router)
//   output (nat)      TCP from this host's own programs, except the data
//                     plane's (by uid: its upstream sockets must go out as they are)
//   input (filter)    the listener takes redirected connections only
// Local destinations and --exclude prefixes are left alone.
import { parseCidr } from '../cidr.js';
import type { NftStep } from './route-plan.js';

export const NFT_TABLE = 'tunsteer';

export interface RedirectPlanConfig {
  /** The listener's port. */
  port: number;
  /** The data plane's uid: its own connections are never redirected. */
  uid: number;
  /** IPv4 and IPv6 CIDRs that keep the direct path. */
  excludes: string[];
}

export function planRedirect(cfg: RedirectPlanConfig): NftStep[] {
  if (!Number.isInteger(cfg.port) || cfg.port < 1 || cfg.port > 65535) throw new RangeError(`redirect port ${cfg.port} not in 1..65535`);
  const v4 = ['127.0.0.0/8'];
  const v6 = ['::1/128'];
  for (const c of cfg.excludes) {
    const p = parseCidr(c);
    if (!p) throw new RangeError(`exclude "${c}" is not a CIDR`);
    (p.family === 4 ? v4 : v6).push(p.text);
  }
  const skip = ['fib daddr type local return', `ip daddr { ${v4.join(', ')} } return`, `ip6 daddr { ${v6.join(', ')} } return`];
  const redirect = `meta l4proto tcp redirect to :${cfg.port}`;
  const script = [
    `table inet ${NFT_TABLE} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...skip.map((l) => `    ${l}`),
    `    ${redirect}`,
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    `    meta skuid ${cfg.uid} return`,
    ...skip.map((l) => `    ${l}`),
    `    ${redirect}`,
    '  }',
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    tcp dport ${cfg.port} ct status dnat accept`,
    `    tcp dport ${cfg.port} iifname != "lo" drop`,
    '  }',
    '}',
    '',
  ].join('\n');
  return [{ kind: 'nft', script, undo: ['delete', 'table', 'inet', NFT_TABLE], desc: `nftables table inet ${NFT_TABLE}: TCP redirected to :${cfg.port}` }];
}
