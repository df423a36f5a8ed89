// What happens to a connection or an HTTP request: the compiled rules, the
// upstreams they name, and the header values they inject, behind one small
// interface the proxy core asks. Rule hits are counted here for metrics.
import type { HeaderEdit } from './http/header-edits.js';
import type { MatchInput, Rule, RuleMatcher } from './rules/rule-types.js';
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
  private readonly firstNameSensitive: number;
  private readonly firstProtocolSensitive: number;
  private readonly firstUdpSensitive: number;
  readonly hasHeaderRules: boolean;
  /** Some rule depends on the name: every HTTP request is then read, whatever --no-http-inspect says. */
  readonly namesMatter: boolean;
  readonly hits = new Map<string, number>();
  /** The constructor's arguments (plain data), for a worker thread that compiles its own copy (src/data-plane/workers). */
  readonly parts: readonly [Rule[], ReadonlyMap<string, UpstreamProxy>, ReadonlyMap<number, string>, ReadonlyMap<string, string>];

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
  ) {
    this.parts = [rules, upstreams, headerValues, caFiles];
    this.matcher = compileRules(rules);
    this.decisions = rules.map((r) => {
      const a = r.action;
      const upstreamName = a.type === 'proxy' ? a.upstream : a.type === 'set-header' || a.type === 'remove-header' ? a.upstream : undefined;
      const upstream = upstreamName === undefined ? undefined : upstreams.get(upstreamName);
      if (upstreamName !== undefined && !upstream) throw new Error(`${ruleName(r)}: unknown upstream "${upstreamName}"`);
      const edits: HeaderEdit[] =
        a.type === 'set-header' ? [{ op: 'set', name: a.header, value: headerValues.get(r.index) ?? '' }] : a.type === 'remove-header' ? [{ op: 'remove', name: a.header }] : [];
      const named = !!(r.match.domain?.length || r.match.domainSuffix?.length || r.match.domainKeyword?.length);
      const d: Decision = { rule: ruleName(r), action: a.type, upstream, edits, secret: a.type === 'set-header', named };
      if (a.type === 'set-header' && a.upstreamTls) {
        const ca = a.upstreamTls.caFile === undefined ? undefined : caFiles.get(a.upstreamTls.caFile);
        if (a.upstreamTls.caFile !== undefined && ca === undefined) throw new Error(`${ruleName(r)}: CA file ${a.upstreamTls.caFile} was not read`);
        d.upstreamTls = { port: a.upstreamTls.port, ...(ca !== undefined ? { ca } : {}) };
      }
      return d;
    });
    const byName = (r: Rule) => !!(r.match.domain || r.match.domainSuffix || r.match.domainKeyword);
    const byProtocol = (r: Rule) => !!r.match.protocol?.some((p) => p !== 'udp' && p !== 'quic');
    this.firstNameSensitive = rules.findIndex((r) => byName(r) || byProtocol(r));
    this.firstProtocolSensitive = rules.findIndex(byProtocol);
    this.firstUdpSensitive = rules.findIndex((r) => byName(r) || !!r.match.protocol?.some((p) => p === 'quic' || p === 'unknown'));
    this.hasHeaderRules = rules.some((r) => r.action.type === 'set-header' || r.action.type === 'remove-header');
    this.namesMatter = rules.some(byName);
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
   * True when what a UDP flow's first datagrams say (a QUIC Initial's SNI, or
   * that UDP to port 443 is no readable QUIC) could change its decision: a
   * rule on names, or on protocol quic or unknown, at or before the match.
   */
  udpNeedsSniff(input: MatchInput): boolean {
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
    const r = this.matcher.match(input);
    if (r && this.decisions[r.index].upstreamTls) return true;
    const first = input.hostname === undefined ? this.firstNameSensitive : this.firstProtocolSensitive;
    if (first < 0) return false;
    return r === undefined || first <= r.index;
  }
}
