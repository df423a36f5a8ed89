// Rule-sets at scale (issue 18): a 1,000,000-entry domain list and a
// 100,000-entry CIDR list, against 10-entry lists of each: the file's load
// time (read, parse, build), the RSS it adds, and lookups per second through
// a rule (`rule_set: NAME`) as the proxy core asks, half hits and half misses.
// For comparison, the same entries as one inline rule (the compiled
// matcher's maps and prefix trie). Each measurement runs in a fresh process,
// so RSS is that of the set alone.
//   node --expose-gc --import tsx bench/rule-sets.ts [--quick]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, measure: { type: 'string' }, file: { type: 'string' }, n: { type: 'string' } }, allowPositionals: true });
const DOMAINS = values.quick ? 100_000 : 1_000_000;
const CIDRS = values.quick ? 10_000 : 100_000;
const LOOKUPS = values.quick ? 200_000 : 2_000_000;

/** A small deterministic generator (xorshift32), so every run builds the same lists. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

const TLDS = ['com', 'net', 'org', 'example', 'test', 'io', 'cn', 'de'];
function domainAt(i: number): string {
  return `d${i.toString(36)}.s${(i % 997).toString(36)}.${TLDS[i % TLDS.length]}`;
}

function generate(dir: string): void {
  const lines: string[] = [];
  for (let i = 0; i < DOMAINS; i++) {
    const d = domainAt(i);
    lines.push(i % 3 === 0 ? `+.${d}` : i % 3 === 1 ? `.${d}` : d);
  }
  writeFileSync(join(dir, 'domains.txt'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'domains10.txt'), lines.slice(0, 10).join('\n') + '\n');
  const r = rng(18);
  const cidrs: string[] = [];
  for (let i = 0; i < CIDRS; i++) {
    if (i % 10 === 9) {
      const w = () => Math.floor(r() * 0x10000).toString(16);
      cidrs.push(`2001:db8:${w()}:${w()}::/64`);
    } else {
      const a = Math.floor(r() * 2 ** 32) >>> 0;
      const prefix = 16 + Math.floor(r() * 17);
      cidrs.push(`${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${prefix}`);
    }
  }
  writeFileSync(join(dir, 'cidrs.txt'), cidrs.join('\n') + '\n');
  writeFileSync(join(dir, 'cidrs10.txt'), cidrs.slice(0, 10).join('\n') + '\n');
}

interface Figures {
  loadMs: number;
  rssMb: number;
  lookupsPerSec: number;
  hitRate: number;
}

/** In the child: load one file as a rule-set (or an inline rule), then look up. */
async function measure(kind: 'set' | 'inline', file: string, what: 'domains' | 'cidrs'): Promise<Figures> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const { loadRuleSetFile } = await import('../src/proxy/rules/rule-set-file.js');
  const { compileRules } = await import('../src/proxy/rules/compiled-matcher.js');
  const { cidrMatch } = await import('../src/proxy/rules/cidr-match.js');
  const { readFileSync } = await import('node:fs');
  const { LiveRuleSet } = await import('../src/proxy/rules/live-rule-set.js');
  type MatchInput = import('../src/proxy/rules/rule-types.js').MatchInput;
  gc();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let match: (i: MatchInput) => boolean;
  if (kind === 'set') {
    const s = new LiveRuleSet('s', file, loadRuleSetFile('s', file));
    const m = compileRules([{ index: 0, match: { ruleSet: ['s'] }, action: { type: 'direct' } }], new Map([['s', s]]));
    match = (i) => m.match(i) !== undefined;
  } else {
    // the inline rule a user would write for the same list
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const rule =
      what === 'cidrs'
        ? { cidr: lines.map((l) => cidrMatch(l)!) }
        : {
            domain: lines.filter((l) => !l.startsWith('.') && !l.startsWith('+.')),
            domainSuffix: lines.filter((l) => l.startsWith('.') || l.startsWith('+.')).map((l) => (l.startsWith('+.') ? l.slice(2) : l)),
          };
    const m = compileRules([{ index: 0, match: rule, action: { type: 'direct' } }]);
    match = (i) => m.match(i) !== undefined;
  }
  const loadMs = performance.now() - t0;
  gc();
  const rssMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
  // inputs: half drawn from the list (hits), half not in it
  const r = rng(7);
  const n = Number(values.n ?? DOMAINS);
  const inputs: MatchInput[] = [];
  for (let k = 0; k < 10_000; k++) {
    const hit = k % 2 === 0;
    if (what === 'domains') {
      const i = Math.floor(r() * Math.min(n, 10));
      const j = Math.floor(r() * n);
      const d = hit ? domainAt(n <= 10 ? i : j) : `miss${k}.${domainAt(j)}x`;
      // "+." and "." entries match names below them; plain ones only themselves
      const idx = n <= 10 ? i : j;
      const name = hit && idx % 3 !== 2 ? `www.${d}` : d;
      inputs.push({ hostname: name, protocol: 'tls', dstAddress: '203.0.113.1', dstPort: 443, srcAddress: '192.0.2.1' });
    } else {
      const a = Math.floor(r() * 2 ** 32) >>> 0;
      inputs.push({ protocol: 'tcp', dstAddress: `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`, dstPort: 443, srcAddress: '192.0.2.1' });
    }
  }
  let hits = 0;
  for (let k = 0; k < 20_000; k++) if (match(inputs[k % inputs.length])) hits++; // warm up
  hits = 0;
  const t1 = performance.now();
  for (let k = 0; k < LOOKUPS; k++) if (match(inputs[k % inputs.length])) hits++;
  const secs = (performance.now() - t1) / 1000;
  return { loadMs, rssMb, lookupsPerSec: LOOKUPS / secs, hitRate: hits / LOOKUPS };
}

function child(kind: string, file: string, what: string, n: number): Figures {
  const out = execFileSync(
    process.execPath,
    [
      '--expose-gc',
      '--max-old-space-size=4096',
      '--import',
      'tsx',
      import.meta.filename,
      '--measure',
      `${kind}:${what}`,
      '--file',
      file,
      '--n',
      String(n),
      ...(values.quick ? ['--quick'] : []),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  return JSON.parse(out.trim().split('\n').pop()!) as Figures;
}

if (values.measure) {
  const [kind, what] = values.measure.split(':') as ['set' | 'inline', 'domains' | 'cidrs'];
  console.log(JSON.stringify(await measure(kind, values.file!, what)));
} else {
  const dir = mkdtempSync(join(tmpdir(), 'ts-rulesets-'));
  try {
    generate(dir);
    const rows: [string, Figures][] = [];
    const f = (n: number) => n.toLocaleString('en-US');
    for (const [what, big] of [
      ['domains', DOMAINS],
      ['cidrs', CIDRS],
    ] as const) {
      rows.push([`rule-set, ${f(big)} ${what}`, child('set', join(dir, `${what}.txt`), what, big)]);
      rows.push([`rule-set, 10 ${what}`, child('set', join(dir, `${what}10.txt`), what, 10)]);
      rows.push([`inline rule, ${f(big)} ${what}`, child('inline', join(dir, `${what}.txt`), what, big)]);
    }
    console.log(`Rule-sets, ${new Date().toISOString()}, node ${process.version}${values.quick ? ' (--quick)' : ''}; ${f(LOOKUPS)} lookups each, half hits for domains\n`);
    console.log('| set | load (ms) | RSS added (MiB) | lookups/s | hit rate |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    for (const [name, x] of rows)
      console.log(`| ${name} | ${x.loadMs.toFixed(0)} | ${x.rssMb.toFixed(1)} | ${f(Math.round(x.lookupsPerSec))} | ${(x.hitRate * 100).toFixed(0)}% |`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
