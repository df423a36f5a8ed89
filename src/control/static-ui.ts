// The dashboard's files (src/control/ui: plain HTML, CSS and JavaScript, no
// build step), read once at start and served from memory at /ui/. Only names
// found there are served, so no path can reach another file.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export interface StaticFile {
  type: string;
  body: Buffer;
}

/** The directory: beside this file in the sources, or the sources' from the compiled dist/src/control. */
function uiDir(): string | null {
  const here = import.meta.dirname;
  for (const d of [join(here, 'ui'), join(here, '../../../src/control/ui')]) if (existsSync(join(d, 'index.html'))) return d;
  return null;
}

export function loadUi(dir = uiDir()): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (dir === null) return files;
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return files;
}
