// The indexed rule matcher. Each rule is filed under ONE primary key (domain group, else cidr,
// else sourceCidr, else port, else protocol, else "always"); a lookup gathers the rules whose
// primary key the input hits, walks them in list order and returns the first whose other
// groups also match. Index hits are exact, so the primary group never needs re-checking.
// Lookup cost depends on the hostname length, address width and the number of rules the
// input actually hits, not on the size of the rule set. Same semantics as NaiveMatcher.
import { addressBytes, cidrContains } from './cidr-match.js';
import { hasDomainGroup, normaliseName, parseSuffix, present } from './naive-matcher.js';
import {
  protocolTags,
  type CidrMatch,
  type MatchInput,
  type PortRange,
  type ProcessMatch,
  type Rule,
  type RuleMatcher,
  type RuleSetMatcher,
  type RuleSets,
  type SniffedProtocol,
  type UidRange,
} from './rule-types.js';
import { processIs, uidIn } from './owner-match.js';
import { SetQuery } from './set-query.js';
import { setsOf } from './rule-set-refs.js';

type Primary = 'domain' | 'cidr' | 'sourceCidr' | 'port' | 'protocol' | 'always';

interface Entry {
  rule: Rule;
  primary: Primary;
  cidr?: CidrMatch[];
  sourceCidr?: CidrMatch[];
  port?: PortRange[];
  protocol?: SniffedProtocol[];
  /** Checked after the index hit, like the other non-primary groups: one set's own index per name. */
  ruleSet?: RuleSetMatcher[];
  user?: UidRange[];
  process?: ProcessMatch[];
}

/** Rule positions, ascending: rules are filed in list order and a repeat of the last one is dropped. */
type Positions = number[];

function file<K>(map: Map<K, Positions>, key: K, pos: number): void {
  const list = map.get(key);
  if (!list) map.set(key, [pos]);
  else if (list[list.length - 1] !== pos) list.push(pos);
}

function fileIn(list: Positions, pos: number): void {
  if (list[list.length - 1] !== pos) list.push(pos);
}

interface TrieNode {
  zero?: TrieNode;
  one?: TrieNode;
  rules?: Positions;
}

/** A binary prefix trie; a lookup walks at most 32 or 128 bits and collects every covering prefix. */
class PrefixTrie {
  private readonly v4: TrieNode = {};
  private readonly v6: TrieNode = {};

  insert(c: CidrMatch, pos: number): void {
    let node = c.bytes.length === 4 ? this.v4 : this.v6;
    for (let i = 0; i < c.prefix; i++) {
      const bit = (c.bytes[i >> 3] >> (7 - (i & 7))) & 1;
      node = bit ? (node.one ??= {}) : (node.zero ??= {});
    }
    if (!node.rules) node.rules = [pos];
    else fileIn(node.rules, pos);
  }

  collect(bytes: Uint8Array, out: Positions[]): void {
    let node: TrieNode | undefined = bytes.length === 4 ? this.v4 : this.v6;
    const bits = bytes.length * 8;
    for (let i = 0; node; i++) {
      if (node.rules) out.push(node.rules);
      if (i === bits) break;
      node = (bytes[i >> 3] >> (7 - (i & 7))) & 1 ? node.one : node.zero;
    }
  }
}

class CompiledMatcher implements RuleMatcher {
  private readonly entries: Entry[] = [];
  private readonly exact = new Map<string, Positions>();
  /** Non-strict suffixes, looked up with the whole name. */
  private readonly suffixSelf = new Map<string, Positions>();
  /** All suffixes, looked up with the part after each dot of the name. */
  private readonly suffixBelow = new Map<string, Positions>();
  /** Keyword -> rules, grouped by keyword length so a lookup slides one window per length. */
  private readonly keywords = new Map<number, Map<string, Positions>>();
  private readonly dst = new PrefixTrie();
  private readonly src = new PrefixTrie();
  private readonly portExact = new Map<number, Positions>();
  private readonly portRanges: { from: number; to: number; pos: number }[] = [];
  private readonly protocols = new Map<SniffedProtocol, Positions>();
  private readonly always: Positions = [];
  private needDst = false;
  private needSrc = false;

  constructor(
    rules: Rule[],
    private readonly ruleSets: RuleSets,
  ) {
    rules.forEach((rule, pos) => this.add(rule, pos));
  }

  private add(rule: Rule, pos: number): void {
    const m = rule.match;
    const e: Entry = { rule, primary: 'always' };
    if (present(m.cidr)) e.cidr = m.cidr;
    if (present(m.sourceCidr)) e.sourceCidr = m.sourceCidr;
    if (present(m.port)) e.port = m.port;
    if (present(m.protocol)) e.protocol = m.protocol;
    if (present(m.ruleSet)) e.ruleSet = setsOf(rule, this.ruleSets);
    if (present(m.user)) e.user = m.user;
    if (present(m.process)) e.process = m.process;
    this.needDst ||= e.cidr !== undefined;
    this.needSrc ||= e.sourceCidr !== undefined;
    this.entries.push(e);

    if (hasDomainGroup(m)) {
      e.primary = 'domain';
      for (const d of m.domain ?? []) file(this.exact, normaliseName(d), pos);
      for (const s of m.domainSuffix ?? []) {
        const { base, strict } = parseSuffix(s);
        if (!strict) file(this.suffixSelf, base, pos);
        file(this.suffixBelow, base, pos);
      }
      for (const k of m.domainKeyword ?? []) {
        const kw = k.toLowerCase();
        let byLen = this.keywords.get(kw.length);
        if (!byLen) this.keywords.set(kw.length, (byLen = new Map()));
        file(byLen, kw, pos);
      }
    } else if (e.cidr) {
      e.primary = 'cidr';
      for (const c of e.cidr) this.dst.insert(c, pos);
    } else if (e.sourceCidr) {
      e.primary = 'sourceCidr';
      for (const c of e.sourceCidr) this.src.insert(c, pos);
    } else if (e.port) {
      e.primary = 'port';
      for (const r of e.port) {
        if (r.from === r.to) file(this.portExact, r.from, pos);
        else this.portRanges.push({ from: r.from, to: r.to, pos });
      }
    } else if (e.protocol) {
      e.primary = 'protocol';
      for (const p of e.protocol) file(this.protocols, p, pos);
    } else {
      this.always.push(pos);
    }
  }

  match(input: MatchInput): Rule | undefined {
    const lists: Positions[] = [];
    if (input.hostname !== undefined) this.collectDomain(normaliseName(input.hostname), lists);
    const dst = this.needDst ? addressBytes(input.dstAddress) : null;
    const src = this.needSrc ? addressBytes(input.srcAddress) : null;
    if (dst) this.dst.collect(dst, lists);
    if (src) this.src.collect(src, lists);
    const exactPort = this.portExact.get(input.dstPort);
    if (exactPort) lists.push(exactPort);
    if (this.portRanges.length) {
      const inRange: Positions = [];
      for (const r of this.portRanges) {
        if (r.from <= input.dstPort && input.dstPort <= r.to) fileIn(inRange, r.pos);
      }
      if (inRange.length) lists.push(inRange);
    }
    const tags = protocolTags(input);
    for (const tag of tags) {
      const proto = this.protocols.get(tag);
      if (proto) lists.push(proto);
    }
    if (this.always.length) lists.push(this.always);

    let query: SetQuery | undefined;
    const pos = firstInOrder(lists, (p) => this.rest(this.entries[p], input, dst, src, tags) && this.who(this.entries[p], input, () => (query ??= new SetQuery(input))));
    return pos < 0 ? undefined : this.entries[pos].rule;
  }

  private collectDomain(name: string, lists: Positions[]): void {
    const exact = this.exact.get(name);
    if (exact) lists.push(exact);
    const self = this.suffixSelf.get(name);
    if (self) lists.push(self);
    for (let i = name.indexOf('.'); i >= 0; i = name.indexOf('.', i + 1)) {
      const below = this.suffixBelow.get(name.slice(i + 1));
      if (below) lists.push(below);
    }
    if (this.keywords.size === 0) return;
    // One keyword can sit at several offsets; its list must go in only once.
    const seen = new Set<Positions>();
    for (const [len, byKeyword] of this.keywords) {
      for (let i = 0; i + len <= name.length; i++) {
        const hit = byKeyword.get(name.slice(i, i + len));
        if (hit && !seen.has(hit)) {
          seen.add(hit);
          lists.push(hit);
        }
      }
    }
  }

  /** The groups other than the primary one, which the index hit already proved. */
  private rest(e: Entry, input: MatchInput, dst: Uint8Array | null, src: Uint8Array | null, tags: readonly SniffedProtocol[]): boolean {
    if (e.cidr && e.primary !== 'cidr' && !(dst && e.cidr.some((c) => cidrContains(c, dst)))) return false;
    if (e.sourceCidr && e.primary !== 'sourceCidr' && !(src && e.sourceCidr.some((c) => cidrContains(c, src)))) {
      return false;
    }
    if (e.port && e.primary !== 'port' && !e.port.some((r) => r.from <= input.dstPort && input.dstPort <= r.to)) {
      return false;
    }
    if (e.protocol && e.primary !== 'protocol' && !e.protocol.some((p) => tags.includes(p))) return false;
    return true;
  }

  /** The rule-set, user and process groups: never primary, checked last (the owner and the sets cost the most). */
  private who(e: Entry, input: MatchInput, query: () => SetQuery): boolean {
    if (e.user && !uidIn(e.user, input.owner)) return false;
    if (e.process && !processIs(e.process, input.owner)) return false;
    if (e.ruleSet) {
      const q = query();
      if (!e.ruleSet.some((s) => s.matches(q))) return false;
    }
    return true;
  }
}

/**
 * Visits the union of ascending lists in ascending order (a k-way merge over a min-heap of
 * list heads, so nothing is sorted per call) and returns the first position `ok` accepts, or -1.
 */
function firstInOrder(lists: Positions[], ok: (pos: number) => boolean): number {
  if (lists.length === 0) return -1;
  if (lists.length === 1) {
    for (const p of lists[0]) if (ok(p)) return p;
    return -1;
  }
  const at = new Array<number>(lists.length).fill(0);
  const head = (l: number): number => lists[l][at[l]];
  const heap = lists.map((_, l) => l);
  const down = (i: number): void => {
    for (;;) {
      const a = 2 * i + 1;
      const b = a + 1;
      let min = i;
      if (a < heap.length && head(heap[a]) < head(heap[min])) min = a;
      if (b < heap.length && head(heap[b]) < head(heap[min])) min = b;
      if (min === i) return;
      [heap[i], heap[min]] = [heap[min], heap[i]];
      i = min;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  let last = -1;
  while (heap.length) {
    const l = heap[0];
    const p = head(l);
    if (++at[l] === lists[l].length) {
      const tail = heap.pop()!;
      if (heap.length) heap[0] = tail;
    }
    if (heap.length) down(0);
    // Equal positions come out back to back; check each rule once.
    if (p !== last) {
      last = p;
      if (ok(p)) return p;
    }
  }
  return -1;
}

/** Compiles an ordered rule list (first match wins) into an indexed matcher. */
export function compileRules(rules: Rule[], ruleSets: RuleSets = new Map()): RuleMatcher {
  return new CompiledMatcher(rules, ruleSets);
}
