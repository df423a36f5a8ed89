// `tunsteer --version`: the version in package.json, found from this file
// wherever it runs (src/cli from source, dist/src/cli when built).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function version(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tunsteer' && pkg.version) return pkg.version;
    } catch {
      // not here: one level up
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
