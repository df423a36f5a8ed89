// What happens to a connection or an HTTP request: the compiled rules, the
// upstreams they name, and the header values they inject, behind one small
// interface the proxy core asks. Rule hits are counted here for metrics.
import type { HeaderEdit } from './http/header-edits.js';
import type { MatchInput, OwnerNeed, Rule, RuleMatcher, RuleSets } from './rules/rule-types.js';
import { compileRules } from './rules/compiled-matcher.js';
import type { UpstreamProxy } from './upstream-proxies.js';

export interface Decision {
  /** The rule's name for logs: its `name`, or rules[i]; "default" when none matched. */
  rule: string;
  action: Rule['action']['type'];
  upstream?: UpstreamProxy;
  /** Header edits of a set-header / remove-header rule. */
  edits: HeaderEdit[];
  /** A set-header rule's value is a secret: it goes only where the connection really reaches the name. */
  secret: boolean;
  /** The rule matched on a name (a domain key): a secret then needs the destination to be that name's. */
  named: boolean;
  /** Speak HTTPS to the destination for the program's plain HTTP (set-header rules with upstream_tls). */
  upstreamTls?: { port: number; ca?: string };
}

const DEFAULT: Decision = { rule: 'default', action: 'direct', edits: [], secret: false, named: false };

export function ruleName(r: Rule): string {
  return r.name ?? `rules[${r.index}]`;
}

/**
 * How a connection leaves the gateway under a decision: requests on one
 * kept-alive connection must all go the same way, or the later ones are
 * answered 421 (their client retries on a new connection).
 */
export function routeOf(d: Decision): string {
  if (d.action === 'reject') return 'reject';
  return `${d.upstream?.name ?? 'direct'}${d.upstreamTls ? `+tls:${d.upstreamTls.port}` : ''}`;
}

export class Policy {
  private readonly matcher: RuleMatcher;
  private readonly decisions: Decision[];
  /** Index of the first rule a sniffed name or protocol could change the outcome of. */
  private firstNameSensitive = -1;
  private readonly firstProtocolSensitive: number;
  private firstUdpSensitive = -1;
  /** Index of the first rule that reads who made the connection (user, process, or a set that does), and how much of it. */
  /** The rules reading the owner (any of it, the process) with their owner keys taken off. */
  private ownerReaders: RuleMatcher | null = null;
  private processReaders: RuleMatcher | null = null;
  /** The rule-sets' generations the fields above were worked out for. */
  private setsSeen = -1;
  readonly hasHeaderRules: boolean;
  private namesMatterNow = false;
  readonly hits = new Map<string, number>();
  /** Decisions and the time of the last (epoch ms, 0: none), by rule index; the last slot is the default. */
  readonly hitCounts: Float64Array;
  readonly hitAt: Float64Array;

  /**
   * `headerValues` maps a set-header rule's index to its value, read once at
   * startup from the environment or a file (never from the config text);
   * `caFiles` maps an upstream_tls CA file to its PEM text.
   */
  constructor(
    readonly rules: Rule[],
    upstreams: ReadonlyMap<string, UpstreamProxy>,
    headerValues: ReadonlyMap<number, string>,
    caFiles: ReadonlyMap<string, string> = new Map(),
    /** Named rule-sets the rules' rule_set keys refer to (live ones reload in place). */
    readonly ruleSets: RuleSets = new Map(),
  ) {
    this.matcher = compileRules(rules, ruleSets);
    this.hitCounts = new Float64Array(rules.length + 1);
    this.hitAt = new Float64Array(rules.length + 1);
    this.decisions = rules.map((r) => {
      const a = r.action;
      const upstreamName = a.type === 'proxy' ? a.upstream : a.type === 'set-header' || a.type === 'remove-header' ? a.upstream : undefined;
      const upstream = upstreamName === undefined ? undefined : upstreams.get(upstreamName);
      if (upstreamName !== undefined && !upstream) throw new Error(`${ruleName(r)}: unknown upstream "${upstreamName}"`);
      const edits: HeaderEdit[] =
        a.type === 'set-header' ? [{ op: 'set', name: a.header, value: headerValues.get(r.index) ?? '' }] : a.type === 'remove-header' ? [{ op: 'remove', name: a.header }] : [];
      // a rule-set may match on the name the client claims: the secret then needs the destination checked too
      const named = !!(r.match.domain?.length || r.match.domainSuffix?.length || r.match.domainKeyword?.length || r.match.ruleSet?.length);
      const d: Decision = { rule: ruleName(r), action: a.type, upstream, edits, secret: a.type === 'set-header', named };
      if (a.type === 'set-header' && a.upstreamTls) {
        const ca = a.upstreamTls.caFile === undefined ? undefined : caFiles.get(a.upstreamTls.caFile);
        if (a.upstreamTls.caFile !== undefined && ca === undefined) throw new Error(`${ruleName(r)}: CA file ${a.upstreamTls.caFile} was not read`);
        d.upstreamTls = { port: a.upstreamTls.port, ...(ca !== undefined ? { ca } : {}) };
      }
      return d;
    });
    this.firstProtocolSensitive = rules.findIndex(byProtocol);
    this.hasHeaderRules = rules.some((r) => r.action.type === 'set-header' || r.action.type === 'remove-header');
    this.refresh();
  }

  /** Some rule depends on the name: every HTTP request is then read, whatever --no-http-inspect says. */
  get namesMatter(): boolean {
    this.refresh();
    return this.namesMatterNow;
  }

  /** What depends on the rule-sets' contents, worked out again after a set was reloaded. */
  private refresh(): void {
    let gen = 0;
    for (const s of this.ruleSets.values()) gen += s.generation ?? 0;
    if (gen === this.setsSeen) return;
    this.setsSeen = gen;
    const sets = (r: Rule) => (r.match.ruleSet ?? []).map((n) => this.ruleSets.get(n)!).filter((s) => s !== undefined);
    const byName = (r: Rule) => !!(r.match.domain || r.match.domainSuffix || r.match.domainKeyword) || sets(r).some((s) => s.needs.names);
    const ownerNeed = (r: Rule): OwnerNeed => Math.max(r.match.process?.length ? 2 : r.match.user?.length ? 1 : 0, ...sets(r).map((s) => s.needs.owner)) as OwnerNeed;
    this.firstNameSensitive = this.rules.findIndex((r) => byName(r) || byProtocol(r));
    this.firstUdpSensitive = this.rules.findIndex((r) => byName(r) || !!r.match.protocol?.some((p) => p === 'quic' || p === 'unknown'));
    // the rules that read the owner, without their owner keys (and without sets that read it):
    // the owner matters for a connection only if one of them matches it otherwise
    const strip = (r: Rule): Rule => {
      const { user: _u, process: _p, ruleSet, ...rest } = r.match;
      const kept = (ruleSet ?? []).filter((n) => (this.ruleSets.get(n)?.needs.owner ?? 0) === 0);
      return { ...r, match: kept.length && kept.length === (ruleSet ?? []).length ? { ...rest, ruleSet: kept } : rest };
    };
    const readers = (min: OwnerNeed) => {
      const list = this.rules.filter((r) => ownerNeed(r) >= min).map(strip);
      return list.length ? compileRules(list, this.ruleSets) : null;
    };
    this.ownerReaders = readers(1);
    this.processReaders = readers(2);
    this.namesMatterNow = this.rules.some(byName);
  }

  /**
   * How much of the connection's owner the rules need to decide it: 0 when
   * no rule at or before the match without one reads it, else 1 (the uid)
   * or 2 (the process too). Asked once per connection, before deciding.
   */
  ownerNeed(input: MatchInput): OwnerNeed {
    this.refresh();
    if (!this.ownerReaders) return 0;
    const bare = { ...input, owner: undefined };
    const reader = this.ownerReaders.match(bare);
    if (!reader) return 0;
    const r = this.matcher.match(bare);
    if (r !== undefined && r.index < reader.index) return 0;
    // the process too only when a rule reading it could match, ahead of the match without an owner
    const p = this.processReaders?.match(bare);
    return p !== undefined && (r === undefined || p.index <= r.index) ? 2 : 1;
  }

  /** The rule that matches, without counting a hit. */
  peek(input: MatchInput): Decision {
    const r = this.matcher.match(input);
    return r ? this.decisions[r.index] : DEFAULT;
  }

  decide(input: MatchInput): Decision {
    const r = this.matcher.match(input);
    const d = r ? this.decisions[r.index] : DEFAULT;
    this.hits.set(d.rule, (this.hits.get(d.rule) ?? 0) + 1);
    const i = r ? r.index : this.rules.length;
    this.hitCounts[i]++;
    this.hitAt[i] = Date.now();
    return d;
  }

  /**
   * True when what a UDP flow's first datagrams say (a QUIC Initial's SNI, or
   * that UDP to port 443 is no readable QUIC) could change its decision: a
   * rule on names, or on protocol quic or unknown, at or before the match.
   */
  udpNeedsSniff(input: MatchInput): boolean {
    this.refresh();
    const first = this.firstUdpSensitive;
    if (first < 0) return false;
    const r = this.matcher.match(input);
    return r === undefined || first <= r.index;
  }

  /**
   * True when what the client's first bytes say (SNI, Host, protocol) could
   * change the decision for this TCP connection, or the decision needs to know
   * the stream is HTTP (TLS origination): then it is accepted and sniffed
   * before the upstream is chosen.
   */
  needsSniff(input: MatchInput): boolean {
    this.refresh();
    const r = this.matcher.match(input);
    if (r && this.decisions[r.index].upstreamTls) return true;
    const first = input.hostname === undefined ? this.firstNameSensitive : this.firstProtocolSensitive;
    if (first < 0) return false;
    return r === undefined || first <= r.index;
  }
}

const byProtocol = (r: Rule) => !!r.match.protocol?.some((p) => p !== 'udp' && p !== 'quic');
