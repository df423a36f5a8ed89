// The plain-text rule-set format: one entry a line.
//
//   example.com          the name itself
//   +.example.com        the name and every name below it (mihomo's "+.")
//   .example.com         only names below it
//   *.example.com        names exactly one label below it
//   keyword:tracker      names holding this substring
//   192.0.2.0/24         destinations in this network (IPv4 or IPv6; a bare address is one host)
//   # a comment          (also after an entry: "example.com  # why"); blank lines are skipped
//
// mihomo's "classical" lines are read too (DOMAIN, DOMAIN-SUFFIX,
// DOMAIN-KEYWORD, IP-CIDR, IP-CIDR6, with an optional ",no-resolve"), so a
// rule-provider file works unchanged. Anything else is an error naming the line.
import { cidrMatch } from './cidr-match.js';
import { domainProblem } from './domain-names.js';
import { BELOW, CHILD, EXACT } from './domain-set.js';
import { ProblemList } from './rule-set-error.js';
import { DestinationsBuilder, RuleSet } from './rule-set.js';

const CLASSICAL = /^(DOMAIN|DOMAIN-SUFFIX|DOMAIN-KEYWORD|IP-CIDR|IP-CIDR6),([^,]*)(,no-resolve)?$/i;

/** Reads one line into the builder; the problem, or null. */
function addLine(b: DestinationsBuilder, entry: string): string | null {
  const classical = CLASSICAL.exec(entry);
  if (classical) {
    const kind = classical[1].toUpperCase();
    const value = classical[2].trim();
    if (kind === 'DOMAIN') return addName(b, value.toLowerCase(), EXACT);
    if (kind === 'DOMAIN-SUFFIX') return addName(b, value.toLowerCase().replace(/^\./, ''), EXACT | BELOW);
    if (kind === 'DOMAIN-KEYWORD') return addKeyword(b, value.toLowerCase());
    return addCidr(b, value);
  }
  if (entry.startsWith('keyword:')) return addKeyword(b, entry.slice(8).toLowerCase());
  const c0 = entry.charCodeAt(0);
  // a digit first, or a ':' or '/' anywhere: an address (a domain label may start with a digit too)
  if ((c0 >= 0x30 && c0 <= 0x39) || entry.includes(':') || entry.includes('/')) {
    if (c0 >= 0x30 && c0 <= 0x39 && b.addIpv4Text(entry)) return null;
    const c = cidrMatch(entry);
    if (c) {
      b.addCidr(c);
      return null;
    }
    if (entry.includes('/') || entry.includes(':')) return `not a CIDR, a domain or keyword:WORD: ${JSON.stringify(entry)}`;
  }
  const lower = entry.toLowerCase();
  if (lower.startsWith('+.')) return addName(b, lower.slice(2), EXACT | BELOW);
  if (lower.startsWith('*.')) return addName(b, lower.slice(2), CHILD);
  if (lower.startsWith('.')) return addName(b, lower.slice(1), BELOW);
  return addName(b, lower.endsWith('.') ? lower.slice(0, -1) : lower, EXACT);
}

function addName(b: DestinationsBuilder, name: string, flags: number): string | null {
  const p = domainProblem(name);
  if (p) return `not a domain name (${p}): ${JSON.stringify(name)}`;
  b.addDomain(name, flags);
  return null;
}

function addKeyword(b: DestinationsBuilder, word: string): string | null {
  if (word.length === 0) return 'an empty keyword';
  b.addKeyword(word);
  return null;
}

function addCidr(b: DestinationsBuilder, text: string): string | null {
  const c = cidrMatch(text);
  if (!c) return `not a CIDR: ${JSON.stringify(text)}`;
  b.addCidr(c);
  return null;
}

/** Parses the text of `file` (named in messages) into a rule-set; throws a RuleSetError naming every bad line (the first few). */
export function parseTextRuleSet(name: string, file: string, text: string): RuleSet {
  const b = new DestinationsBuilder();
  const problems = new ProblemList();
  let line = 0;
  for (let at = 0; at <= text.length;) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    line++;
    let entry = text.slice(at, end);
    at = end + 1;
    const hash = entry.indexOf('#');
    if (hash >= 0) entry = entry.slice(0, hash);
    entry = entry.trim();
    if (entry.length === 0) continue;
    // a quoted entry (YAML-ish lists pasted in): the quotes are not part of the name
    if (entry.length > 1 && (entry[0] === "'" || entry[0] === '"') && entry[entry.length - 1] === entry[0]) entry = entry.slice(1, -1);
    const p = addLine(b, entry);
    if (p) problems.add(line, p);
  }
  problems.throwIfAny(file);
  return new RuleSet(name, file, b.build(), []);
}
