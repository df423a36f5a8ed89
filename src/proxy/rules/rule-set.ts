// A compiled rule-set: what a rule's `rule_set: NAME` asks about a
// connection. A set is a list of entries, any of which may match (sing-box's
// headless rules, OR'ed). Entries that only name destinations (domains,
// suffixes, keywords, regexes, CIDRs: every line of a plain-text list, and
// most of sing-box's) are folded into one index, whatever their number; the
// few entries with more conditions (ports, network, source, process,
// invert, and/or) are checked one by one after it.
import type { CidrSet } from './cidr-set.js';
import { CidrSetBuilder } from './cidr-set.js';
import type { DomainSet } from './domain-set.js';
import { DomainSetBuilder } from './domain-set.js';
import { processIs, transportOf } from './owner-match.js';
import type { CidrMatch, OwnerNeed, PortRange, ProcessMatch, RuleSetMatcher } from './rule-types.js';
import type { SetQuery } from './set-query.js';

/** Destinations: a name covered by the domains, holding a keyword or matching a regex, or an address in the CIDRs. */
export class Destinations {
  constructor(
    readonly domains: DomainSet,
    /** Keywords by length: a lookup slides one window per length present. */
    readonly keywords: ReadonlyMap<number, ReadonlySet<string>>,
    readonly regexes: readonly RegExp[],
    readonly cidrs: CidrSet,
  ) {}

  get hasNames(): boolean {
    return this.domains.size > 0 || this.keywords.size > 0 || this.regexes.length > 0;
  }

  get size(): number {
    let keywords = 0;
    for (const s of this.keywords.values()) keywords += s.size;
    return this.domains.size + keywords + this.regexes.length + this.cidrs.size;
  }

  has(q: SetQuery): boolean {
    const name = this.hasNames ? q.name : undefined;
    if (name !== undefined) {
      if (this.domains.has(name)) return true;
      for (const [len, words] of this.keywords) {
        for (let i = 0; i + len <= name.length; i++) if (words.has(name.slice(i, i + len))) return true;
      }
      for (const r of this.regexes) if (r.test(name)) return true;
    }
    if (this.cidrs.size === 0) return false;
    const dst = q.dst;
    return dst !== null && this.cidrs.has(dst);
  }
}

/** An entry with more than destinations (sing-box's default headless rule): every key given must match. */
export interface ConditionEntry {
  kind: 'default';
  dest: Destinations | null;
  network?: ('tcp' | 'udp')[];
  sourceCidrs?: CidrSet;
  ports?: PortRange[];
  sourcePorts?: PortRange[];
  processNames?: ProcessMatch[];
  processPaths?: ProcessMatch[];
  processPathRegexes?: RegExp[];
  invert: boolean;
}

export interface LogicalEntry {
  kind: 'logical';
  mode: 'and' | 'or';
  entries: SetEntry[];
  invert: boolean;
}

export type SetEntry = ConditionEntry | LogicalEntry;

const inRanges = (ranges: readonly PortRange[], port: number | undefined) => port !== undefined && ranges.some((r) => r.from <= port && port <= r.to);

function entryMatches(e: SetEntry, q: SetQuery): boolean {
  if (e.kind === 'logical') {
    const hit = e.mode === 'and' ? e.entries.every((x) => entryMatches(x, q)) : e.entries.some((x) => entryMatches(x, q));
    return hit !== e.invert;
  }
  const i = q.input;
  let hit = true;
  if (e.dest && !e.dest.has(q)) hit = false;
  else if (e.network && !e.network.includes(transportOf(i))) hit = false;
  else if (e.sourceCidrs && !(q.src !== null && e.sourceCidrs.has(q.src))) hit = false;
  else if (e.ports && !inRanges(e.ports, i.dstPort)) hit = false;
  else if (e.sourcePorts && !inRanges(e.sourcePorts, i.srcPort)) hit = false;
  else if (e.processNames && !processIs(e.processNames, i.owner)) hit = false;
  else if (e.processPaths && !processIs(e.processPaths, i.owner)) hit = false;
  else if (e.processPathRegexes && !(i.owner?.exe !== undefined && e.processPathRegexes.some((r) => r.test(i.owner!.exe!)))) hit = false;
  return hit !== e.invert;
}

function entryNeeds(e: SetEntry): { names: boolean; owner: OwnerNeed } {
  if (e.kind === 'logical') {
    return e.entries.map(entryNeeds).reduce((a, b) => ({ names: a.names || b.names, owner: Math.max(a.owner, b.owner) as OwnerNeed }), { names: false, owner: 0 as OwnerNeed });
  }
  const process = e.processNames || e.processPaths || e.processPathRegexes;
  return { names: e.dest?.hasNames ?? false, owner: process ? 2 : 0 };
}

export interface RuleSetStats {
  /** Entries folded into the index: domains, keywords, regexes, CIDRs (merged ranges). */
  indexed: number;
  /** Entries checked one by one. */
  conditional: number;
  /** Bytes the index holds (typed arrays; keywords and regexes not counted). */
  bytes: number;
}

export class RuleSet implements RuleSetMatcher {
  readonly needs: { names: boolean; owner: OwnerNeed };

  constructor(
    readonly name: string,
    /** Where it was read from, for messages. */
    readonly source: string,
    private readonly index: Destinations,
    private readonly entries: readonly SetEntry[],
  ) {
    const parts = entries.map(entryNeeds);
    this.needs = {
      names: index.hasNames || parts.some((p) => p.names),
      owner: parts.reduce<OwnerNeed>((a, p) => Math.max(a, p.owner) as OwnerNeed, 0),
    };
  }

  matches(q: SetQuery): boolean {
    if (this.index.has(q)) return true;
    for (const e of this.entries) if (entryMatches(e, q)) return true;
    return false;
  }

  get stats(): RuleSetStats {
    return { indexed: this.index.size, conditional: this.entries.length, bytes: this.index.domains.byteSize + this.index.cidrs.byteSize };
  }
}

/** Collects destinations (for the index or one entry) as the parsers read them. */
export class DestinationsBuilder {
  readonly domains = new DomainSetBuilder();
  private readonly keywords = new Map<number, Set<string>>();
  private readonly regexes: RegExp[] = [];
  readonly cidrs = new CidrSetBuilder();

  get size(): number {
    let keywords = 0;
    for (const s of this.keywords.values()) keywords += s.size;
    return this.domains.size + keywords + this.regexes.length + this.cidrs.size;
  }

  addDomain(name: string, flags: number): void {
    this.domains.add(name, flags);
  }

  addKeyword(word: string): void {
    let byLen = this.keywords.get(word.length);
    if (!byLen) this.keywords.set(word.length, (byLen = new Set()));
    byLen.add(word);
  }

  addRegex(r: RegExp): void {
    this.regexes.push(r);
  }

  addCidr(c: Pick<CidrMatch, 'bytes' | 'prefix'>): void {
    this.cidrs.add(c);
  }

  /** An IPv4 address or CIDR written plainly, added without the general parser; false: not one, try that. */
  addIpv4Text(text: string): boolean {
    return this.cidrs.addIpv4Text(text);
  }

  build(): Destinations {
    return new Destinations(this.domains.build(), this.keywords, this.regexes, this.cidrs.build());
  }
}
