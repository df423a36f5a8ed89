// tunsteer's version, from its package.json (found above this file, in the
// sources or in dist/), for GET /version.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cached: string | undefined;

export function tunsteerVersion(): string {
  if (cached !== undefined) return cached;
  cached = 'unknown';
  for (let d = import.meta.dirname; d !== dirname(d); d = dirname(d)) {
    const f = join(d, 'package.json');
    if (!existsSync(f)) continue;
    try {
      const p = JSON.parse(readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (p.name === 'tunsteer' && p.version) {
        cached = p.version;
        break;
      }
    } catch {
      // not ours: look further up
    }
  }
  return cached;
}
