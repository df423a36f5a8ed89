// The reference matcher: a plain first-match loop, written to be obviously right.
// The compiled matcher must give the same answer for every input (see the property test).
//
// Decisions beyond rule-types.ts, shared with the compiled matcher:
// - a key with an empty list counts as absent (as in sing-box), so it does not constrain;
// - hostnames and config names compare lower-case with one trailing dot removed;
//   keywords are only lower-cased (a dot in a keyword is part of the substring);
// - a destination/source address that is not an IP address matches no CIDR;
// - protocols compare by equality ('http' does not match a 'tcp' rule), except that a
//   QUIC or unknown UDP flow is also 'udp' (protocolTags).
import { addressBytes, cidrContains } from './cidr-match.js';
import { normaliseName, parseSuffix, suffixMatches } from './domain-names.js';
import { protocolTags, type MatchInput, type Rule, type RuleMatch, type RuleMatcher, type RuleSetMatcher, type RuleSets } from './rule-types.js';
import { processIs, uidIn } from './owner-match.js';
import { SetQuery } from './set-query.js';
import { setsOf } from './rule-set-refs.js';

/** A key counts only with at least one value. */
export function present<T>(values: T[] | undefined): values is T[] {
  return values !== undefined && values.length > 0;
}

export function hasDomainGroup(m: RuleMatch): boolean {
  return present(m.domain) || present(m.domainSuffix) || present(m.domainKeyword);
}

export { normaliseName, parseSuffix, suffixMatches, type Suffix } from './domain-names.js';

export class NaiveMatcher implements RuleMatcher {
  private readonly rules: Rule[];
  private readonly sets: (RuleSetMatcher[] | undefined)[];

  constructor(rules: Rule[], ruleSets: RuleSets = new Map()) {
    this.rules = rules;
    this.sets = rules.map((r) => (present(r.match.ruleSet) ? setsOf(r, ruleSets) : undefined));
  }

  match(input: MatchInput): Rule | undefined {
    return this.rules.find((rule, i) => ruleMatches(rule.match, input, this.sets[i]));
  }
}

function ruleMatches(m: RuleMatch, input: MatchInput, sets: RuleSetMatcher[] | undefined): boolean {
  if (hasDomainGroup(m)) {
    if (input.hostname === undefined) return false;
    const name = normaliseName(input.hostname);
    const exact = (m.domain ?? []).some((d) => normaliseName(d) === name);
    const suffix = (m.domainSuffix ?? []).some((s) => suffixMatches(parseSuffix(s), name));
    const keyword = (m.domainKeyword ?? []).some((k) => name.includes(k.toLowerCase()));
    if (!exact && !suffix && !keyword) return false;
  }
  if (present(m.cidr)) {
    const dst = addressBytes(input.dstAddress);
    if (!dst || !m.cidr.some((c) => cidrContains(c, dst))) return false;
  }
  if (present(m.sourceCidr)) {
    const src = addressBytes(input.srcAddress);
    if (!src || !m.sourceCidr.some((c) => cidrContains(c, src))) return false;
  }
  if (present(m.port)) {
    if (!m.port.some((r) => r.from <= input.dstPort && input.dstPort <= r.to)) return false;
  }
  if (present(m.protocol)) {
    const tags = protocolTags(input);
    if (!m.protocol.some((p) => tags.includes(p))) return false;
  }
  if (present(m.user) && !uidIn(m.user, input.owner)) return false;
  if (present(m.process) && !processIs(m.process, input.owner)) return false;
  if (sets) {
    const q = new SetQuery(input);
    if (!sets.some((s) => s.matches(q))) return false;
  }
  return true;
}
