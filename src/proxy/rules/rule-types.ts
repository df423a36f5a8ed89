// The rule model the proxy core decides with. The config schema produces it,
// the compiled matcher and the naive reference matcher both consume it.
//
// Semantics (as sing-box and mihomo users expect): within one rule, the values
// of one key are alternatives (any of them matches) and the three domain keys
// together form one group; different groups must all match. A rule with no
// match keys matches everything. The first matching rule wins; none means direct.

export type SniffedProtocol = 'http' | 'tls' | 'tcp' | 'udp';

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
}

export type RuleAction =
  | { type: 'direct' }
  | { type: 'proxy'; upstream: string }
  | { type: 'reject' }
  /** Header rules apply to HTTP requests; the request then continues direct (or via `upstream`). */
  | { type: 'set-header'; header: string; value: HeaderValueSource; upstream?: string }
  | { type: 'remove-header'; header: string; upstream?: string };

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
  dstAddress: string;
  dstPort: number;
  srcAddress: string;
}

export interface RuleMatcher {
  /** The first rule that matches, or undefined (direct). */
  match(input: MatchInput): Rule | undefined;
}
