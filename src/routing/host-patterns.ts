// Host patterns of per-host mode: `api.example.com` matches that name only;
// `*.corp.example` matches every name below corp.example (not corp.example
// itself, as with TLS wildcards). Names compare case-insensitively, without a
// trailing dot. Lookup is a Set probe per label suffix: cost grows with the
// labels of the name, not with the number of patterns.

export class HostPatterns {
  private readonly exact = new Set<string>();
  private readonly suffixes = new Set<string>();

  constructor(patterns: readonly string[]) {
    for (const p of patterns) {
      const n = normalizeName(p);
      if (n.startsWith('*.')) this.suffixes.add(n.slice(2));
      else this.exact.add(n);
    }
  }

  get size(): number {
    return this.exact.size + this.suffixes.size;
  }

  matches(name: string): boolean {
    const n = normalizeName(name);
    if (this.exact.has(n)) return true;
    for (let i = n.indexOf('.'); i >= 0; i = n.indexOf('.', i + 1)) {
      if (this.suffixes.has(n.slice(i + 1))) return true;
    }
    return false;
  }
}

export function normalizeName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** A pattern as `--host` accepts it: a DNS name, optionally prefixed by "*.". */
export function isHostPattern(p: string): boolean {
  const n = p.startsWith('*.') ? p.slice(2) : p;
  return /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i.test(n);
}
