// What happens to a connection or an HTTP request: the compiled rules, the
// upstreams they name, and the header values they inject, behind one small
// interface the proxy core asks. Rule hits are counted here for metrics.
import type { HeaderEdit } from './http/header-edits.js';
import type { MatchInput, Rule, RuleMatcher } from './rules/rule-types.js';
import { compileRules } from './rules/compiled-matcher.js';
import type { UpstreamProxy } from './upstream-proxies.js';
import type { RequestVerdict } from './http/http-forward.js';

export interface Decision {
  /** The rule's name for logs: its `name`, or rules[i]; "default" when none matched. */
  rule: string;
  action: Rule['action']['type'];
  upstream?: UpstreamProxy;
  /** Header edits of a set-header / remove-header rule. */
  edits: HeaderEdit[];
}

const DEFAULT: Decision = { rule: 'default', action: 'direct', edits: [] };

export function ruleName(r: Rule): string {
  return r.name ?? `rules[${r.index}]`;
}

export class Policy {
  private readonly matcher: RuleMatcher;
  private readonly decisions: Decision[];
  /** Index of the first rule a sniffed name or protocol could change the outcome of. */
  private readonly firstNameSensitive: number;
  private readonly firstProtocolSensitive: number;
  readonly hasHeaderRules: boolean;
  readonly hits = new Map<string, number>();

  /**
   * `headerValues` maps a set-header rule's index to its value, read once at
   * startup from the environment or a file (never from the config text).
   */
  constructor(
    readonly rules: Rule[],
    upstreams: ReadonlyMap<string, UpstreamProxy>,
    headerValues: ReadonlyMap<number, string>,
  ) {
    this.matcher = compileRules(rules);
    this.decisions = rules.map((r) => {
      const a = r.action;
      const upstreamName = a.type === 'proxy' ? a.upstream : a.type === 'set-header' || a.type === 'remove-header' ? a.upstream : undefined;
      const upstream = upstreamName === undefined ? undefined : upstreams.get(upstreamName);
      if (upstreamName !== undefined && !upstream) throw new Error(`${ruleName(r)}: unknown upstream "${upstreamName}"`);
      const edits: HeaderEdit[] =
        a.type === 'set-header'
          ? [{ op: 'set', name: a.header, value: headerValues.get(r.index) ?? '' }]
          : a.type === 'remove-header'
            ? [{ op: 'remove', name: a.header }]
            : [];
      return { rule: ruleName(r), action: a.type, upstream, edits };
    });
    const byName = (r: Rule) => !!(r.match.domain || r.match.domainSuffix || r.match.domainKeyword);
    const byProtocol = (r: Rule) => !!r.match.protocol?.some((p) => p !== 'udp');
    this.firstNameSensitive = rules.findIndex((r) => byName(r) || byProtocol(r));
    this.firstProtocolSensitive = rules.findIndex(byProtocol);
    this.hasHeaderRules = rules.some((r) => r.action.type === 'set-header' || r.action.type === 'remove-header');
  }

  /** The rule that matches, without counting a hit. */
  peek(input: MatchInput): Decision {
    const r = this.matcher.match(input);
    return r ? this.decisions[r.index] : DEFAULT;
  }

  decide(input: MatchInput): Decision {
    const d = this.peek(input);
    this.hits.set(d.rule, (this.hits.get(d.rule) ?? 0) + 1);
    return d;
  }

  /**
   * True when what the client's first bytes say (SNI, Host, protocol) could
   * change the decision for this TCP connection: then it is accepted and
   * sniffed before the upstream is chosen.
   */
  needsSniff(input: MatchInput): boolean {
    const first = input.hostname === undefined ? this.firstNameSensitive : this.firstProtocolSensitive;
    if (first < 0) return false;
    const r = this.matcher.match(input);
    return r === undefined || first <= r.index;
  }

  /** Per HTTP request on a kept-alive connection: header rules and rejects apply to each. */
  requestVerdict(input: MatchInput): RequestVerdict {
    const d = this.decide(input);
    return { rule: d.rule, action: d.action, reject: d.action === 'reject', edits: d.edits };
  }
}
