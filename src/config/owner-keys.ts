// A rule's owner and rule-set keys (user, process, rule_set) as the rule model holds them; apart
// from rule-set-config.ts (its schema, zod) so the data plane builds rules without the parser.
import { readFileSync } from 'node:fs';
import type { ProcessMatch, RuleMatch, UidRange } from '../proxy/rules/rule-types.js';

interface OwnerKeys {
  rule_set?: string[];
  user?: (number | string)[];
  process?: string[];
}

export function uidRangeOf(u: number | string): UidRange {
  if (typeof u === 'number') return { from: u, to: u };
  const range = /^(\d+)-(\d+)$/.exec(u);
  if (range) return { from: Number(range[1]), to: Number(range[2]) };
  if (/^\d+$/.test(u)) return { from: Number(u), to: Number(u) };
  const uid = uidOfName(u);
  if (uid === undefined) throw new Error(`no user "${u}" in /etc/passwd`);
  return { from: uid, to: uid };
}

export function processMatchOf(p: string): ProcessMatch {
  return p.startsWith('/') ? { path: p } : { name: p };
}

/** The rule-set and owner keys of one rule, into its match. */
export function addOwnerKeys(r: OwnerKeys, match: RuleMatch): void {
  if (r.rule_set) match.ruleSet = r.rule_set;
  if (r.user) match.user = r.user.map(uidRangeOf);
  if (r.process) match.process = r.process.map(processMatchOf);
}

/** The uid of a user name in /etc/passwd, or undefined. */
export function uidOfName(name: string): number | undefined {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && /^\d+$/.test(f[2] ?? '')) return Number(f[2]);
  }
  return undefined;
}
