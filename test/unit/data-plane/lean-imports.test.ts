// What a process loads at start is memory it holds for its whole life (each package below costs
// 4-12 MB of RSS: docs/DECISIONS.md, "Lean memory"). These walk the static import graph (import
// and export ... from, not `import type` nor a dynamic import()) from each entry point and
// check that the data plane never loads the config parser, the supervisor only for a config
// file, and nothing loads SOCKS5 before a SOCKS5 upstream is dialled.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Every module reachable by static imports from entry: our files (src/...) and package names. */
function staticImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(join(ROOT, file), 'utf8');
    // import x from '...'; import { a } from '...'; export { a } from '...'; import '...'
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm)) {
      const spec = m[1];
      if (spec.startsWith('.')) visit(join(dirname(file), spec).replace(/\.js$/, '.ts'));
      else if (!spec.startsWith('node:')) seen.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  };
  visit(entry);
  return seen;
}

t.test('the data plane child loads no config parser (zod, yaml) and no SOCKS5 client', async (t) => {
  // main.ts is what the child runs first (the hidden __data-plane command), then child.ts
  const mods = new Set([...staticImports('src/cli/main.ts'), ...staticImports('src/data-plane/child.ts')]);
  for (const pkg of ['zod', 'yaml', 'socks']) t.notOk(mods.has(pkg), `${pkg} not loaded`);
  t.ok(mods.has('src/stack/stack.ts') && mods.has('pino'), 'the walk follows imports (the stack and pino are there)');
});

t.test('the supervisor loads no SOCKS5 client, and the config parser only for a file (config-reader.ts)', async (t) => {
  for (const cmd of ['up', 'run', 'proxy']) {
    const mods = staticImports(`src/cli/commands/${cmd}.ts`);
    t.ok(mods.has('src/config/settings.ts') && mods.has('src/config/config-reader.ts'), `${cmd}: the walk reaches settings and the reader`);
    for (const dep of ['src/config/load-config.ts', 'zod', 'yaml']) t.notOk(mods.has(dep), `${cmd}: ${dep} is not a static import`);
    if (cmd === 'up') t.notOk(mods.has('socks'));
  }
});

t.test('the walk sees re-exports and skips type-only imports', async (t) => {
  const mods = staticImports('src/config/load-config.ts');
  t.ok(mods.has('src/config/config-models.ts'), 'export { ... } from is followed');
  t.ok(mods.has('yaml'));
});
