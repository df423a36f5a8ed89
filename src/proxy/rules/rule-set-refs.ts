// A rule's `rule_set` names, looked up once when the rules are compiled: the
// matchers keep the sets themselves (live ones swap their contents on a
// reload, so the reference stays good).
import type { Rule, RuleSetMatcher, RuleSets } from './rule-types.js';

export function setsOf(rule: Rule, ruleSets: RuleSets): RuleSetMatcher[] {
  return (rule.match.ruleSet ?? []).map((name) => {
    const s = ruleSets.get(name);
    if (!s) throw new Error(`${rule.name ?? `rules[${rule.index}]`}: unknown rule_set "${name}"`);
    return s;
  });
}
