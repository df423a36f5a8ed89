// The route-all plan, PURE: config and the discovered uplink in, steps out, each
// with its own undo. Nothing here runs a command or reads a file; the journal
// stores these steps as they are and the runner and restore execute them.
//
// Layout (priorities from priorityBase, one apart, below main's 32766):
//   table T:  default dev TUN
//   P+0       from UPLINK_SRC lookup main              gateway's own sockets, and replies
//                                                      from this host's uplink address
//                                                      (and from a former uplink address
//                                                      still on the host: see `keep`)
//   P+1       from UPLINK_SRC unreachable              with no route in main, those sockets fail
//                                                      (ENETUNREACH) instead of looping into the TUN
//   P+2       to UPLINK_GW/32 lookup main              (when there is a gateway: the slot
//                                                      is kept either way)
//   P+3..     to EXCLUDE lookup main                   one per --exclude
//   P+k       lookup main suppress_prefixlength 0      LAN, TUN subnet, host routes; not main's default
//   P+k+1     lookup T                                 everything else into the TUN
// Added top to bottom, so traffic is steered only once every bypass exists;
// undone bottom to top, so it stops being steered first. See docs/DECISIONS.md
// "## Route-all routing".
//
// The priorities do not depend on the uplink (a gateway or none, an IPv6
// uplink or none), so when the uplink changes under a running gateway only the
// bypass rules at P+0 to P+2 differ between the old plan and the new one, and
// the catch-all never moves (route-follow.ts applies the difference). With no
// IPv4 uplink at all (null) the bypass rules are left out: everything goes
// into the TUN and the gateway refuses what it cannot send (nothing loops).
//
// IPv6 (route6) gets the same layout in its own rule list (`ip -6 rule`, same
// priorities, same table number: each family has its own tables), after the
// IPv4 steps: from the uplink's IPv6 source, to its next hop when global
// (a link-local one is on-link: suppress_prefixlength 0 keeps fe80::/64),
// IPv6 excludes, suppress_prefixlength 0, lookup T; the same fixed slots. Without an IPv6 uplink the
// bypass rules are left out and ::/0 still goes into the TUN: nothing leaks
// around the gateway. See docs/DECISIONS.md "## IPv6 routing".
import { parseCidr } from '../cidr.js';
import { formatArgv } from './ip-exec.js';
import type { Uplink, Uplink6 } from './uplink.js';

export interface RoutePlanConfig {
  tunName: string;
  /** Routing table holding `default dev TUN` (not 0, 253 default, 254 main, 255 local). */
  table: number;
  /** Priority of the first policy rule; the plan uses priorityBase .. priorityBase+n-1. */
  priorityBase: number;
  /** CIDRs that keep the direct path (main table); IPv6 ones only with route6. */
  excludes: string[];
  /** Also steer IPv6: ::/0 into the TUN, with its own bypass rules (default false here; route-all always sets it). */
  route6?: boolean;
  /**
   * The TUN carries IPv6 (default true). False when it cannot (an MTU below
   * 1280 turns IPv6 off on a link): table T then holds `prohibit default`, so
   * IPv6 fails at once (EACCES) instead of leaking around the gateway.
   */
  tunIpv6?: boolean;
  /** Keep traffic addressed to the uplink's next hop direct (default true). */
  keepGatewayDirect?: boolean;
  /**
   * Set net.ipv4.conf.TUN.rp_filter (0 off, 1 strict, 2 loose). Absent: leave it.
   * The plan passes strict filtering as it is (see DECISIONS), so this is only
   * for hosts with their own reasons; the old value is journaled and restored.
   */
  tunRpFilter?: 0 | 1 | 2;
}

/** One `ip` invocation and the invocation that takes it back. */
export interface IpStep {
  kind: 'ip';
  do: string[];
  undo: string[];
  desc: string;
}

/** Set a sysctl; its undo is the value found just before (captured by the runner, kept in the journal). */
export interface SysctlStep {
  kind: 'sysctl';
  key: string;
  value: string;
  desc: string;
}

/**
 * Rewrite a file in place (same inode, so a bind-mounted /etc/resolv.conf works);
 * its undo writes back the bytes found just before, which the runner captures into the journal.
 */
export interface FileStep {
  kind: 'file';
  path: string;
  content: string;
  desc: string;
}

/** An nftables table of our own: created from a script, undone by deleting the table. */
export interface NftStep {
  kind: 'nft';
  /** `nft -f -` input. */
  script: string;
  /** nft argv that takes it back, e.g. ['delete', 'table', 'inet', 'tunsteer']. */
  undo: string[];
  desc: string;
}

export type Step = IpStep | SysctlStep | FileStep | NftStep;

export class RoutePlanError extends Error {
  override name = 'RoutePlanError';
}

/** Kernel rule priority of the catch-all `lookup main`; ours must sort before it. */
export const MAIN_RULE_PRIORITY = 32766;
const RESERVED_TABLES = new Set([0, 253, 254, 255]);

function ruleStep(selector: string[], table: string, priority: number, desc: string, extra: string[] = [], family: '-4' | '-6' = '-4'): IpStep {
  const tail = [...selector, 'lookup', table, ...extra, 'priority', String(priority)];
  return { kind: 'ip', do: [family, 'rule', 'add', ...tail], undo: [family, 'rule', 'del', ...tail], desc };
}

/**
 * `from SRC lookup main` falls through when main has no route (the uplink
 * went: cable out, no default route): the next rules would send the
 * gateway's own socket into the TUN, where the stack resets it (a loop). So a
 * source's bypass ends in `from SRC unreachable` at the next priority: with no
 * route, its sockets get ENETUNREACH, as on a host without the gateway.
 */
function sourceRules(source: string, p: number, desc: string, family: '-4' | '-6'): IpStep[] {
  const tail = ['from', source, 'unreachable', 'priority', String(p + 1)];
  return [
    ruleStep(['from', source], 'main', p, desc, [], family),
    {
      kind: 'ip',
      do: [family, 'rule', 'add', ...tail],
      undo: [family, 'rule', 'del', ...tail],
      desc: `with no route in main, sockets bound to ${source} fail (network unreachable) instead of looping into the TUN`,
    },
  ];
}

/** Both rules of each source, every `lookup main` before every `unreachable` (they are at P and P+1). */
function sourcesSteps(sources: { source: string; desc: string }[], p: number, family: '-4' | '-6'): IpStep[] {
  const pairs = sources.map(({ source, desc }) => sourceRules(source, p, desc, family));
  return [...pairs.map((x) => x[0]), ...pairs.map((x) => x[1])];
}

/**
 * Former uplink addresses whose `from ADDR lookup main` rule stays while the
 * address is still on the host: connections bound to it keep the direct path,
 * as they would without the gateway (removing the rule would send them into
 * the TUN, a loop). Once the address is gone its sockets cannot send anyway.
 */
export interface KeptSources {
  sources4?: readonly string[];
  sources6?: readonly string[];
}

function checkConfig(cfg: RoutePlanConfig, uplink: Uplink | null): { excludes: string[]; excludes6: string[] } {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(cfg.tunName)) {
    throw new RoutePlanError(`TUN name "${cfg.tunName}" is not a valid interface name`);
  }
  if (uplink && cfg.tunName === uplink.dev) {
    throw new RoutePlanError(
      `the IPv4 default route already goes through ${cfg.tunName}; route-all needs the real uplink ` + '(is another gateway running, or did one die? try `tunsteer down`)',
    );
  }
  if (!Number.isInteger(cfg.table) || cfg.table < 1 || cfg.table > 0xffffffff || RESERVED_TABLES.has(cfg.table)) {
    throw new RoutePlanError(`routing table ${cfg.table} is not usable (1..4294967295, not 253/254/255)`);
  }
  if (uplink) {
    const src = parseCidr(uplink.source);
    if (!src || src.family !== 4 || src.prefix !== 32) {
      throw new RoutePlanError(`uplink source "${uplink.source}" is not an IPv4 address`);
    }
    if (uplink.gateway !== undefined && parseCidr(uplink.gateway)?.family !== 4) {
      throw new RoutePlanError(`uplink gateway "${uplink.gateway}" is not an IPv4 address`);
    }
  }
  const excludes: string[] = [];
  const excludes6: string[] = [];
  for (const c of cfg.excludes) {
    const p = parseCidr(c);
    if (!p) throw new RoutePlanError(`exclude "${c}" is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32 (network address, no host bits)`);
    if (p.family === 6 && !cfg.route6) {
      throw new RoutePlanError(`exclude "${c}" is IPv6; this plan steers IPv4 only, so IPv6 already stays direct`);
    }
    const list = p.family === 4 ? excludes : excludes6;
    if (!list.includes(p.text)) list.push(p.text);
  }
  return { excludes, excludes6 };
}

/**
 * The ordered steps that put route-all in place. Throws RoutePlanError on a
 * config it cannot honour. uplink null: no IPv4 uplink (no default route).
 */
export function planRouteAll(cfg: RoutePlanConfig, uplink: Uplink | null, uplink6: Uplink6 | null = null, keep: KeptSources = {}): Step[] {
  const { excludes, excludes6 } = checkConfig(cfg, uplink);
  const table = String(cfg.table);
  const steps: Step[] = [];

  if (cfg.tunRpFilter !== undefined) {
    steps.push({
      kind: 'sysctl',
      key: `net.ipv4.conf.${cfg.tunName.replaceAll('.', '/')}.rp_filter`, // sysctl(8) spelling
      value: String(cfg.tunRpFilter),
      desc: `reverse-path filter on ${cfg.tunName} = ${cfg.tunRpFilter}`,
    });
  }

  // Inert until the last rule points lookups at it.
  steps.push({
    kind: 'ip',
    do: ['-4', 'route', 'add', 'default', 'dev', cfg.tunName, 'table', table],
    undo: ['-4', 'route', 'del', 'default', 'dev', cfg.tunName, 'table', table],
    desc: `table ${table}: everything to ${cfg.tunName}`,
  });

  let p = cfg.priorityBase;
  const sources = sourcesOf(uplink?.source, keep.sources4).map((source) => ({
    source,
    desc:
      source === uplink?.source
        ? `sockets bound to the uplink address ${source} bypass the TUN`
        : `connections still bound to the former uplink address ${source} keep the direct path`,
  }));
  steps.push(...sourcesSteps(sources, p, '-4'));
  p += 2;
  if (uplink?.gateway !== undefined && cfg.keepGatewayDirect !== false) {
    steps.push(ruleStep(['to', `${uplink.gateway}/32`], 'main', p, `the uplink next hop ${uplink.gateway} stays direct`));
  }
  p++;
  for (const x of excludes) steps.push(ruleStep(['to', x], 'main', p++, `excluded ${x} stays direct`));
  steps.push(ruleStep([], 'main', p++, 'on-link and specific main routes win, main default does not', ['suppress_prefixlength', '0']));
  steps.push(ruleStep([], table, p, `all other IPv4 into table ${table}`));

  if (p >= MAIN_RULE_PRIORITY) {
    throw new RoutePlanError(`rule priorities ${cfg.priorityBase}..${p} reach main's ${MAIN_RULE_PRIORITY}; lower --rule-priority or use fewer excludes`);
  }
  if (cfg.priorityBase < 1) throw new RoutePlanError(`rule priority ${cfg.priorityBase} must be at least 1 (0 is the local table)`);
  if (cfg.route6) steps.push(...planRoute6(cfg, uplink6, excludes6, keep.sources6 ?? []));
  return steps;
}

/** The current source first, then the kept former ones, each once. */
function sourcesOf(current: string | undefined, kept: readonly string[] = []): string[] {
  return [...new Set([...(current !== undefined ? [current] : []), ...kept])];
}

/** The IPv6 half: the same layout in `ip -6 rule`, same priorities and table number (each family has its own). */
function planRoute6(cfg: RoutePlanConfig, uplink6: Uplink6 | null, excludes6: string[], kept6: readonly string[]): Step[] {
  const table = String(cfg.table);
  if (uplink6) {
    if (uplink6.dev === cfg.tunName) {
      throw new RoutePlanError(`the IPv6 default route already goes through ${cfg.tunName}; is another gateway running, or did one die? try \`tunsteer down\``);
    }
    const src = parseCidr(uplink6.source);
    if (!src || src.family !== 6 || src.prefix !== 128) throw new RoutePlanError(`IPv6 uplink source "${uplink6.source}" is not an IPv6 address`);
    if (uplink6.gateway !== undefined && parseCidr(uplink6.gateway.split('%')[0])?.family !== 6) {
      throw new RoutePlanError(`IPv6 uplink gateway "${uplink6.gateway}" is not an IPv6 address`);
    }
  }
  const target = cfg.tunIpv6 === false ? ['prohibit', 'default'] : ['default', 'dev', cfg.tunName];
  const steps: Step[] = [
    {
      kind: 'ip',
      do: ['-6', 'route', 'add', ...target, 'table', table],
      undo: ['-6', 'route', 'del', ...target, 'table', table],
      desc: cfg.tunIpv6 === false ? `IPv6 table ${table}: prohibit (the TUN's MTU is below IPv6's 1280)` : `IPv6 table ${table}: everything to ${cfg.tunName}`,
    },
  ];
  let p = cfg.priorityBase;
  const rule = (sel: string[], t: string, desc: string, extra: string[] = []) => steps.push(ruleStep(sel, t, p++, desc, extra, '-6'));
  // With `prohibit` the gateway relays no IPv6, so its own sockets need no bypass; and a `from UPLINK6` rule
  // would leak: the kernel, refused by the first lookup, picks a source address without a route and looks up
  // again with it (ip6_dst_lookup_tail), which that rule would send out through main.
  const bypass = cfg.tunIpv6 !== false;
  const current = uplink6 && bypass ? parseCidr(uplink6.source)!.address : undefined;
  const sources = (bypass ? sourcesOf(current, kept6) : []).map((src) => ({
    source: src,
    desc:
      src === current ? `sockets bound to the IPv6 uplink address ${src} bypass the TUN` : `connections still bound to the former IPv6 uplink address ${src} keep the direct path`,
  }));
  steps.push(...sourcesSteps(sources, p, '-6'));
  p += 2;
  const gw = uplink6?.gateway === undefined || !bypass ? undefined : parseCidr(uplink6.gateway.split('%')[0]);
  // a link-local next hop (the usual, from RAs) is on-link: suppress_prefixlength 0 keeps fe80::/64
  if (gw && !isLinkLocal6(gw.address) && cfg.keepGatewayDirect !== false) {
    steps.push(ruleStep(['to', `${gw.address}/128`], 'main', p, `the IPv6 uplink next hop ${gw.address} stays direct`, [], '-6'));
  }
  p++;
  for (const x of excludes6) rule(['to', x], 'main', `excluded ${x} stays direct`);
  rule([], 'main', 'IPv6 on-link and specific main routes win, main default does not', ['suppress_prefixlength', '0']);
  rule([], table, uplink6 ? `all other IPv6 into table ${table}` : `all other IPv6 into table ${table} (no IPv6 uplink: the gateway refuses IPv6 destinations, nothing leaks)`);
  if (p - 1 >= MAIN_RULE_PRIORITY) {
    throw new RoutePlanError(`IPv6 rule priorities ${cfg.priorityBase}..${p - 1} reach main's ${MAIN_RULE_PRIORITY}; lower --rule-priority or use fewer excludes`);
  }
  return steps;
}

function isLinkLocal6(a: string): boolean {
  return /^fe[89ab]/i.test(a);
}

/** Priorities the plan occupies, for a conflict check against `ip rule show` (one family, or both). */
export function planPriorities(steps: readonly Step[], family?: '-4' | '-6'): number[] {
  return steps.flatMap((s) => {
    if (s.kind !== 'ip' || s.do[1] !== 'rule' || (family !== undefined && s.do[0] !== family)) return [];
    const i = s.do.indexOf('priority');
    return i < 0 ? [] : [Number(s.do[i + 1])];
  });
}

function renderStep(s: Step): string {
  if (s.kind === 'ip') return formatArgv(s.do);
  if (s.kind === 'sysctl') return `sysctl -w ${s.key}=${s.value}`;
  if (s.kind === 'nft') return `nft -f - <<'EOF'\n${s.script.trimEnd()}\nEOF`;
  return `write ${s.path}: ${JSON.stringify(s.content)}`;
}

/** `--dry-run`: the plan as commands a person could run, each after a `# why` line. */
export function renderPlan(steps: readonly Step[], opts: { comments?: boolean } = {}): string[] {
  return steps.flatMap((s) => (opts.comments === false ? [renderStep(s)] : [`# ${s.desc}`, renderStep(s)]));
}

/** The undo commands in the order restore runs them (sysctls show the value to put back when known). */
export function renderUndo(steps: readonly (Step & { old?: string })[]): string[] {
  return [...steps]
    .reverse()
    .map((s) =>
      s.kind === 'ip'
        ? formatArgv(s.undo)
        : s.kind === 'sysctl'
          ? `sysctl -w ${s.key}=${s.old ?? '<value before start>'}`
          : s.kind === 'nft'
            ? formatArgv(s.undo, 'nft')
            : `write back the original ${s.path}`,
    );
}
