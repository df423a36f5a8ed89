// sing-box's rule-set source format (JSON, versions 1 to 3): what
// `sing-box rule-set compile` takes, and what `decompile` gives back from an
// .srs file. A set is a list of headless rules, any of which may match:
//
//   {"version": 3, "rules": [
//     {"domain_suffix": ["example.com"], "ip_cidr": ["192.0.2.0/24"]},
//     {"type": "logical", "mode": "and", "rules": [{"network": "udp"}, {"port": 443}]}]}
//
// As in sing-box, the destination keys of one rule are alternatives
// ((domain || domain_suffix || domain_keyword || domain_regex || ip_cidr) &&
// (port || port_range) && ...). Rules with nothing but destination keys, the
// bulk of every list in the wild, go into the set's one index; the others are
// checked one by one. Keys only a phone or a DNS query has (package_name,
// wifi_ssid, query_type, ...) are errors: a rule that can never be evaluated
// here would silently never match.
import { cidrMatch } from './cidr-match.js';
import { domainProblem } from './domain-names.js';
import { BELOW, EXACT } from './domain-set.js';
import { ProblemList } from './rule-set-error.js';
import { DestinationsBuilder, RuleSet, type ConditionEntry, type SetEntry } from './rule-set.js';
import { CidrSetBuilder } from './cidr-set.js';
import type { PortRange, ProcessMatch } from './rule-types.js';

const DESTINATION_KEYS = ['domain', 'domain_suffix', 'domain_keyword', 'domain_regex', 'ip_cidr'] as const;
const OTHER_KEYS = [
  'type',
  'network',
  'source_ip_cidr',
  'port',
  'port_range',
  'source_port',
  'source_port_range',
  'process_name',
  'process_path',
  'process_path_regex',
  'invert',
] as const;
const KNOWN = new Set<string>([...DESTINATION_KEYS, ...OTHER_KEYS]);
const NOT_HERE: Record<string, string> = {
  query_type: 'a DNS rule key',
  package_name: 'an Android key',
  wifi_ssid: 'a phone key',
  wifi_bssid: 'a phone key',
  network_type: 'a phone key',
  network_is_expensive: 'a phone key',
  network_is_constrained: 'a phone key',
  ip_is_private: 'not supported in tunsteer rule-sets (write the private ranges as ip_cidr)',
  source_ip_is_private: 'not supported in tunsteer rule-sets',
  user: "a route-rule key (use the rule's own user key)",
  user_id: "a route-rule key (use the rule's own user key)",
};

/** Finds where a value or key sits in the text, for messages: the line of its first occurrence after `from`. */
class Lines {
  constructor(private readonly text: string) {}

  of(needle: string, from = 0): number {
    let at = this.text.indexOf(needle, from);
    if (at < 0) at = this.text.indexOf(needle);
    return at < 0 ? 1 : this.lineAt(at);
  }

  lineAt(offset: number): number {
    let n = 1;
    for (let i = this.text.indexOf('\n'); i >= 0 && i < offset; i = this.text.indexOf('\n', i + 1)) n++;
    return n;
  }
}

type Json = unknown;

class Reader {
  readonly problems = new ProblemList();
  readonly lines: Lines;
  readonly index = new DestinationsBuilder();

  constructor(text: string) {
    this.lines = new Lines(text);
  }

  fail(where: string, needle: string, message: string): void {
    this.problems.add(this.lines.of(needle), `${where}: ${message}`);
  }

  /** A listable value: one or an array of them. */
  list<T>(where: string, key: string, v: Json, is: (x: Json) => x is T, what: string): T[] {
    const items = Array.isArray(v) ? v : [v];
    const out: T[] = [];
    items.forEach((x, i) => {
      if (is(x)) out.push(x);
      else this.fail(`${where}.${key}${Array.isArray(v) ? `[${i}]` : ''}`, `"${key}"`, `expected ${what}, got ${JSON.stringify(x)}`);
    });
    return out;
  }

  strings(where: string, key: string, v: Json): string[] {
    return this.list(where, key, v, (x): x is string => typeof x === 'string', 'a string');
  }

  entry(where: string, r: Json, topLevel: boolean): SetEntry | null {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) {
      this.fail(where, '"rules"', 'a rule is an object');
      return null;
    }
    const o = r as Record<string, Json>;
    if (o.type === 'logical') return this.logical(where, o);
    if (o.type !== undefined && o.type !== 'default') {
      this.fail(`${where}.type`, `"type"`, `expected "default" or "logical", got ${JSON.stringify(o.type)}`);
      return null;
    }
    for (const k of Object.keys(o)) {
      if (KNOWN.has(k)) continue;
      this.fail(`${where}.${k}`, `"${k}"`, NOT_HERE[k] ? `${k} is ${NOT_HERE[k]}` : `unknown key ${JSON.stringify(k)}`);
    }
    const destKeys = DESTINATION_KEYS.filter((k) => o[k] !== undefined);
    const others = OTHER_KEYS.filter((k) => k !== 'type' && o[k] !== undefined && !(k === 'invert' && o[k] === false));
    // only destinations: into the set's one index
    if (topLevel && others.length === 0) {
      this.destinations(where, o, this.index);
      return null;
    }
    const e: ConditionEntry = { kind: 'default', dest: null, invert: false };
    if (destKeys.length) {
      const b = new DestinationsBuilder();
      this.destinations(where, o, b);
      e.dest = b.build();
    }
    if (o.network !== undefined) {
      e.network = this.list(where, 'network', o.network, (x): x is 'tcp' | 'udp' => x === 'tcp' || x === 'udp', '"tcp" or "udp"');
    }
    if (o.source_ip_cidr !== undefined) {
      const b = new CidrSetBuilder();
      for (const s of this.strings(where, 'source_ip_cidr', o.source_ip_cidr)) {
        const c = cidrMatch(s);
        if (c) b.add(c);
        else this.fail(`${where}.source_ip_cidr`, JSON.stringify(s), `not a CIDR: ${JSON.stringify(s)}`);
      }
      e.sourceCidrs = b.build();
    }
    const ports = this.ports(where, o, 'port', 'port_range');
    if (ports) e.ports = ports;
    const sourcePorts = this.ports(where, o, 'source_port', 'source_port_range');
    if (sourcePorts) e.sourcePorts = sourcePorts;
    if (o.process_name !== undefined) e.processNames = this.strings(where, 'process_name', o.process_name).map((name): ProcessMatch => ({ name }));
    if (o.process_path !== undefined) e.processPaths = this.strings(where, 'process_path', o.process_path).map((path): ProcessMatch => ({ path }));
    if (o.process_path_regex !== undefined)
      e.processPathRegexes = this.strings(where, 'process_path_regex', o.process_path_regex).flatMap((s) => this.regex(`${where}.process_path_regex`, s));
    if (o.invert !== undefined) {
      if (typeof o.invert === 'boolean') e.invert = o.invert;
      else this.fail(`${where}.invert`, '"invert"', 'expected true or false');
    }
    return e;
  }

  private logical(where: string, o: Record<string, Json>): SetEntry | null {
    for (const k of Object.keys(o)) {
      if (!['type', 'mode', 'rules', 'invert'].includes(k)) this.fail(`${where}.${k}`, `"${k}"`, `a logical rule holds type, mode, rules and invert, not ${JSON.stringify(k)}`);
    }
    if (o.mode !== 'and' && o.mode !== 'or') {
      this.fail(`${where}.mode`, '"mode"', `expected "and" or "or", got ${JSON.stringify(o.mode)}`);
      return null;
    }
    if (!Array.isArray(o.rules) || o.rules.length === 0) {
      this.fail(`${where}.rules`, '"logical"', 'a logical rule needs a non-empty rules list');
      return null;
    }
    const entries = o.rules.map((r, i) => this.entry(`${where}.rules[${i}]`, r, false)).filter((e): e is SetEntry => e !== null);
    return { kind: 'logical', mode: o.mode, entries, invert: o.invert === true };
  }

  private destinations(where: string, o: Record<string, Json>, b: DestinationsBuilder): void {
    const name = (key: string, s: string, flags: number, strip: boolean) => {
      let n = s.toLowerCase();
      if (strip && n.startsWith('.')) {
        n = n.slice(1);
        flags = BELOW;
      }
      if (n.endsWith('.')) n = n.slice(0, -1);
      const p = domainProblem(n);
      if (p) this.fail(`${where}.${key}`, JSON.stringify(s), `not a domain name (${p}): ${JSON.stringify(s)}`);
      else b.addDomain(n, flags);
    };
    if (o.domain !== undefined) for (const s of this.strings(where, 'domain', o.domain)) name('domain', s, EXACT, false);
    if (o.domain_suffix !== undefined) for (const s of this.strings(where, 'domain_suffix', o.domain_suffix)) name('domain_suffix', s, EXACT | BELOW, true);
    if (o.domain_keyword !== undefined) {
      for (const s of this.strings(where, 'domain_keyword', o.domain_keyword)) {
        if (s.length === 0) this.fail(`${where}.domain_keyword`, '"domain_keyword"', 'an empty keyword');
        else b.addKeyword(s.toLowerCase());
      }
    }
    if (o.domain_regex !== undefined) for (const s of this.strings(where, 'domain_regex', o.domain_regex)) for (const r of this.regex(`${where}.domain_regex`, s)) b.addRegex(r);
    if (o.ip_cidr !== undefined) {
      for (const s of this.strings(where, 'ip_cidr', o.ip_cidr)) {
        const c = cidrMatch(s);
        if (c) b.addCidr(c);
        else this.fail(`${where}.ip_cidr`, JSON.stringify(s), `not a CIDR: ${JSON.stringify(s)}`);
      }
    }
  }

  private regex(where: string, s: string): RegExp[] {
    try {
      return [new RegExp(s)];
    } catch (e) {
      this.fail(where, JSON.stringify(s), `not a regular expression: ${(e as Error).message}`);
      return [];
    }
  }

  /** port (numbers) and port_range ("from:to", ":to", "from:") together: one list of ranges, or undefined when neither is given. */
  private ports(where: string, o: Record<string, Json>, key: string, rangeKey: string): PortRange[] | undefined {
    if (o[key] === undefined && o[rangeKey] === undefined) return undefined;
    const out: PortRange[] = [];
    const isPort = (x: Json): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 65535;
    if (o[key] !== undefined) for (const p of this.list(where, key, o[key], isPort, 'a port number 0-65535')) out.push({ from: p, to: p });
    if (o[rangeKey] !== undefined) {
      for (const s of this.strings(where, rangeKey, o[rangeKey])) {
        const m = /^(\d{0,5}):(\d{0,5})$/.exec(s);
        const from = m ? (m[1] === '' ? 0 : Number(m[1])) : NaN;
        const to = m ? (m[2] === '' ? 65535 : Number(m[2])) : NaN;
        if (!m || (m[1] === '' && m[2] === '') || to > 65535 || from > to)
          this.fail(`${where}.${rangeKey}`, JSON.stringify(s), `expected "from:to", ":to" or "from:", got ${JSON.stringify(s)}`);
        else out.push({ from, to });
      }
    }
    return out;
  }
}

/** The line of a JSON.parse error, from the offset or line V8 puts in its message. */
function syntaxLine(e: Error, lines: Lines): number {
  const line = /line (\d+)/.exec(e.message);
  if (line) return Number(line[1]);
  const pos = /position (\d+)/.exec(e.message);
  return pos ? lines.lineAt(Number(pos[1])) : 1;
}

export function parseSingBoxRuleSet(name: string, file: string, text: string): RuleSet {
  const r = new Reader(text);
  let doc: Json;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    r.problems.add(syntaxLine(e as Error, r.lines), `not JSON: ${(e as Error).message.replace(/^.*?: /, '').replace(/ in JSON at position \d+.*$/, '')}`);
    r.problems.throwIfAny(file);
    throw new Error('unreachable', { cause: e });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    r.problems.add(1, 'a sing-box rule-set is an object: {"version": 3, "rules": [...]}');
    r.problems.throwIfAny(file);
  }
  const o = doc as Record<string, Json>;
  for (const k of Object.keys(o)) if (k !== 'version' && k !== 'rules') r.fail(k, `"${k}"`, `unknown key ${JSON.stringify(k)} (a rule-set holds version and rules)`);
  if (o.version !== 1 && o.version !== 2 && o.version !== 3) r.fail('version', '"version"', `expected 1, 2 or 3, got ${JSON.stringify(o.version)}`);
  const entries: SetEntry[] = [];
  if (!Array.isArray(o.rules)) r.fail('rules', '"rules"', 'expected a list of rules');
  else {
    o.rules.forEach((rule, i) => {
      const e = r.entry(`rules[${i}]`, rule, true);
      if (e) entries.push(e);
    });
  }
  r.problems.throwIfAny(file);
  return new RuleSet(name, file, r.index.build(), entries);
}
