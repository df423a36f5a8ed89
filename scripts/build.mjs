#!/usr/bin/env node
// Builds what is out of date, and nothing else (npm's install and prepare
// scripts run this):
//   node scripts/build.mjs addon   the native addon (node-gyp), when build/Release lacks it or
//                                  src/tun/native or binding.gyp changed since
//   node scripts/build.mjs dist    the TypeScript (tsc), when a source changed since the last build
//   --force                        build anyway (npm run build)
// Why: `npx tunsteer` installs this package into npm's cache as a link and
// runs its install and prepare scripts there, every first time; unconditional
// node-gyp and tsc made the first `npx tunsteer --help` take 14 s after npm ci
// had already built both.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const [what, ...flags] = process.argv.slice(2);
const force = flags.includes('--force');

/** The newest modification time under these paths (files, or directories walked for the given extensions). */
function newest(paths, exts) {
  let t = 0;
  const visit = (p) => {
    let st;
    try {
      st = statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) {
      for (const e of readdirSync(p)) if (e !== 'node_modules') visit(join(p, e));
    } else if (!exts || exts.some((x) => p.endsWith(x))) {
      t = Math.max(t, st.mtimeMs);
    }
  };
  for (const p of paths) visit(join(ROOT, p));
  return t;
}

function mtime(p) {
  try {
    return statSync(join(ROOT, p)).mtimeMs;
  } catch {
    return -1;
  }
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const ADDON = 'build/Release/tunsteer_tun.node';
const STAMP = 'dist/.built';

if (what === 'addon') {
  if (!force && mtime(ADDON) >= newest(['src/tun/native', 'binding.gyp'])) {
    console.error(`tunsteer: ${ADDON} is up to date`);
  } else if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) {
    // npm's own node-gyp, as npm's default install script would use
    run(process.execPath, [process.env.npm_config_node_gyp, 'rebuild']);
  } else {
    run('node-gyp', ['rebuild']);
  }
} else if (what === 'dist') {
  if (!force && mtime(STAMP) >= newest(['src', 'bench', 'test/helpers', 'tsconfig.json'], ['.ts', '.json'])) {
    console.error('tunsteer: dist is up to date');
  } else {
    run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')]);
    writeFileSync(join(ROOT, STAMP), `${new Date().toISOString()}\n`);
  }
} else {
  console.error('usage: node scripts/build.mjs addon|dist [--force]');
  process.exit(2);
}
