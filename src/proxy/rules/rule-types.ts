// The rule model the proxy core decides with. The config schema produces it,
// the compiled matcher and the naive reference matcher both consume it.
//
// Semantics (as sing-box and mihomo users expect): within one rule, the values
// of one key are alternatives (any of them matches) and the three domain keys
// together form one group; different groups must all match. A rule with no
// match keys matches everything. The first matching rule wins; none means direct.
import type { SetQuery } from './set-query.js';

/**
 * What a connection was found to be. TCP: http, tls, tcp (read: neither), or
 * unknown (could not be told within the sniff budget, or a TLS hello whose
 * name cannot be read). UDP: quic (an Initial whose SNI was read), udp, or
 * unknown (UDP to port 443 that is not a readable QUIC Initial). A rule's
 * `udp` matches every UDP flow, QUIC and unknown ones included.
 */
export type SniffedProtocol = 'http' | 'tls' | 'tcp' | 'udp' | 'quic' | 'unknown';

export interface CidrMatch {
  family: 4 | 6;
  /** The network address, 4 or 16 bytes, host bits zero. */
  bytes: Uint8Array;
  prefix: number;
  /** As written in the config, for logs. */
  text: string;
}

export interface PortRange {
  from: number;
  to: number;
}

/** A range of uids, both ends included (a single uid: from === to). */
export interface UidRange {
  from: number;
  to: number;
}

/** A program: by its executable's name (or its comm), or by the executable's full path. */
export type ProcessMatch = { name: string } | { path: string };

export interface RuleMatch {
  /** Exact names, lower case, no trailing dot. */
  domain?: string[];
  /** "corp.example" matches corp.example and every name below it; ".corp.example" only names below it. */
  domainSuffix?: string[];
  /** A substring of the name. */
  domainKeyword?: string[];
  cidr?: CidrMatch[];
  port?: PortRange[];
  protocol?: SniffedProtocol[];
  sourceCidr?: CidrMatch[];
  /** Names of rule-sets (the config's rule_sets): the connection must be in one of them. */
  ruleSet?: string[];
  /** Who opened the connection (its socket's owner): a uid in one of these ranges. */
  user?: UidRange[];
  /** The program that holds the connection's socket. */
  process?: ProcessMatch[];
}

export type RuleAction =
  | { type: 'direct' }
  | { type: 'proxy'; upstream: string }
  | { type: 'reject' }
  /**
   * Header rules apply to HTTP requests; the request then continues direct (or via `upstream`).
   * set-header values are secrets: added only where the connection really goes to the name.
   */
  | { type: 'set-header'; header: string; value: HeaderValueSource; upstream?: string; upstreamTls?: UpstreamTls }
  | { type: 'remove-header'; header: string; upstream?: string };

/** TLS origination: the program speaks plain HTTP, the gateway HTTPS to the destination (this port). */
export interface UpstreamTls {
  port: number;
  /** A CA file (PEM) to verify the server with, instead of the system's store. */
  caFile?: string;
}

/** Where a header's value comes from: never the config text itself. */
export type HeaderValueSource = { env: string } | { file: string };

export interface Rule {
  /** Position in the configured list, from 0; also the rule's name in logs unless `name` is given. */
  index: number;
  name?: string;
  match: RuleMatch;
  action: RuleAction;
}

/** What a connection (or one HTTP request) is matched on. */
export interface MatchInput {
  /** Lower case, no trailing dot; from the DNS mapping, SNI or Host, in that order. */
  hostname?: string;
  protocol: SniffedProtocol;
  /** UDP for a flow whose protocol is 'unknown' (udp and quic imply it). */
  transport?: 'tcp' | 'udp';
  dstAddress: string;
  dstPort: number;
  srcAddress: string;
  srcPort?: number;
  /**
   * Who made the connection, from its client socket (src/owner): undefined
   * when nobody looked (no rule needs it), null when it was looked for and
   * not found (a forwarded packet, a socket already gone). Only then do the
   * `user` and `process` keys have something to match; otherwise they do not.
   */
  owner?: ConnectionOwner | null;
}

/** The owner of a connection's client socket. */
export interface ConnectionOwner {
  uid: number;
  /** The process holding the socket; absent when only the uid was asked for, or no process holds it any more. */
  pid?: number;
  /** Its executable (readlink /proc/PID/exe). */
  exe?: string;
  /** Its name as the kernel keeps it (/proc/PID/comm, at most 15 bytes). */
  comm?: string;
}

/** How much of the owner a rule needs: none, the uid (sock_diag alone), or the process too (a /proc search). */
export type OwnerNeed = 0 | 1 | 2;

/** A compiled rule-set, as rules see it. */
export interface RuleSetMatcher {
  readonly name: string;
  matches(q: SetQuery): boolean;
  /** What matching it reads: a name (then the name a stream sniffs can change the outcome), the owner. */
  readonly needs: { names: boolean; owner: OwnerNeed };
  /** Changes when the set's contents do (a reloaded file): what was derived from `needs` is stale then. */
  readonly generation?: number;
}

/** Compiled rule-sets by name: what rules' `ruleSet` keys refer to. */
export type RuleSets = ReadonlyMap<string, RuleSetMatcher>;

export interface RuleMatcher {
  /** The first rule that matches, or undefined (direct). */
  match(input: MatchInput): Rule | undefined;
}

/** The protocol values a rule's `protocol` key is compared with: a QUIC or unknown UDP flow is UDP too. */
export function protocolTags(input: Pick<MatchInput, 'protocol' | 'transport'>): readonly SniffedProtocol[] {
  if (input.protocol === 'quic') return QUIC_TAGS;
  if (input.protocol === 'unknown' && input.transport === 'udp') return UNKNOWN_UDP_TAGS;
  return TAGS[input.protocol];
}

const QUIC_TAGS: readonly SniffedProtocol[] = ['quic', 'udp'];
const UNKNOWN_UDP_TAGS: readonly SniffedProtocol[] = ['unknown', 'udp'];
const TAGS: Record<SniffedProtocol, readonly SniffedProtocol[]> = {
  http: ['http'],
  tls: ['tls'],
  tcp: ['tcp'],
  udp: ['udp'],
  quic: QUIC_TAGS,
  unknown: ['unknown'],
};
