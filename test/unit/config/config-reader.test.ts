// The config file's parsers (yaml, zod, the schema) load only when a command
// names a file: `up` from flags alone must not pull them in through a static
// import, or the supervisor holds them for its whole life (config-reader.ts).
import t from 'tap';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { configReader } from '../../../src/config/config-reader.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Every module a file reaches through static value imports (not `import type`, not `import()`): ours as paths, packages by name. */
function staticClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith('.ts')) continue;
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'([^']+)';/gm)) {
      const spec = m[1];
      if (spec.startsWith('node:')) continue;
      if (spec.startsWith('.')) todo.push(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
      else seen.add(spec.split('/')[0]);
    }
  }
  return seen;
}

t.test('`up`, `run` and `proxy` reach the config parser only through configReader', async (t) => {
  for (const cmd of ['up', 'run', 'proxy']) {
    const reach = staticClosure(join(ROOT, `src/cli/commands/${cmd}.ts`));
    t.ok(reach.has(join(ROOT, 'src/config/settings.ts')), `${cmd} reaches settings.ts (the walk follows imports)`);
    t.notOk(reach.has(join(ROOT, 'src/config/load-config.ts')), `${cmd}: load-config.ts is not a static import`);
    t.notOk(reach.has('yaml'), `${cmd}: yaml is not loaded`);
    t.notOk(reach.has('zod'), `${cmd}: zod is not loaded`);
  }
});

t.test('configReader: no file reads nothing; a file is read, and read again each call', async (t) => {
  t.same((await configReader(undefined))(undefined), {});
  const dir = mkdtempSync(join(tmpdir(), 'tunsteer-cfgreader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'mode: per-host\nhosts: [a.example]\n');
  const read = await configReader(file);
  t.match(read(file), { mode: 'per-host', hosts: ['a.example'] });
  writeFileSync(file, 'mode: route-all\n');
  t.match(read(file), { mode: 'route-all' }, 'a reload sees the file as it is now');
});
