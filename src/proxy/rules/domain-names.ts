// Domain names as rules compare them: lower case, one trailing dot removed;
// a suffix anchored at a name, with or without the name itself; and what a
// rule-set file may hold as a name.

export function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

export interface Suffix {
  /** The name the suffix is anchored at. */
  base: string;
  /** Written with a leading dot: only names strictly below `base`. */
  strict: boolean;
}

export function parseSuffix(value: string): Suffix {
  const strict = value.startsWith('.');
  return { base: normaliseName(strict ? value.slice(1) : value), strict };
}

export function suffixMatches(s: Suffix, name: string): boolean {
  return (!s.strict && name === s.base) || name.endsWith('.' + s.base);
}

/**
 * Why this text (already lower-cased, prefix removed) is not a domain name a
 * rule can hold, or null: labels of letters, digits, '-' and '_' (service
 * names such as _dmarc), 1 to 63 bytes each, 253 in all (RFC 1035 §2.3.4).
 */
export function domainProblem(name: string): string | null {
  if (name.length === 0) return 'empty';
  if (name.length > 253) return 'longer than 253 bytes';
  let label = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x2e) {
      if (label === 0) return 'an empty label (two dots, or a leading dot)';
      label = 0;
      continue;
    }
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
    if (!ok) return c === 0x2a ? "a '*' inside the name (only a leading *. is a wildcard)" : `the character ${JSON.stringify(name[i])}, which no DNS name holds`;
    if (++label > 63) return 'a label longer than 63 bytes';
  }
  return null;
}
