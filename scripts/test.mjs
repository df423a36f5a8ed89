#!/usr/bin/env node
// `npm test`: the whole suite, with two checks around it.
//   Before: root (the end-to-end tests build network namespaces) and every
//   program the tests run (scripts/packages.txt), all missing ones named in
//   one message, instead of tests failing one by one.
//   After: nothing left behind by the suite's own runs: no /run or $TMPDIR
//   tunsteer-run-PID, no /run/tunsteer-demo-PID, tsdemo- namespace or
//   /etc/netns/tsdemo- dir of a process that is gone.
// Arguments go to tap (npm test -- test/e2e/run.test.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function packages() {
  return readFileSync(join(ROOT, 'scripts/packages.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const [pkg, prog, group] = l.trim().split(/\s+/);
      return { pkg, prog, group };
    });
}

function onPath(prog) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  return dirs.some((d) => d && existsSync(join(d, prog)));
}

function preflight() {
  const problems = [];
  if (process.getuid?.() !== 0) problems.push('npm test needs root: its end-to-end tests build network namespaces (the unit tests alone: npx tap test/unit)');
  const missing = packages().filter((p) => p.group !== 'optional' && !onPath(p.prog));
  if (missing.length) {
    problems.push(
      `missing programs the tests run: ${missing.map((p) => p.prog).join(', ')}\n` +
        `  install them: scripts/setup --tests (as root), or apt-get install -y --no-install-recommends ${missing.map((p) => p.pkg).join(' ')}`,
    );
  }
  if (!existsSync(join(ROOT, 'build/Release/tunsteer_tun.node'))) problems.push('the native addon is not built: npm ci (or scripts/setup --tests)');
  const optional = packages().filter((p) => p.group === 'optional' && !onPath(p.prog));
  if (optional.length) console.error(`npm test: not installed, left out of the benchmark smoke test: ${optional.map((p) => p.prog).join(', ')}`);
  return problems;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** What runs of tunsteer (and its demo) left behind: entries named for a pid that is gone. */
function leftovers() {
  const found = [];
  const scan = (dir, re) => {
    let names = [];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const m = re.exec(n);
      if (m && !alive(Number(m[1]))) found.push(join(dir, n));
    }
  };
  scan('/run', /^tunsteer-run-(\d+)$/);
  scan(tmpdir(), /^tunsteer-run-(\d+)(-|$)/);
  scan('/run', /^tunsteer-demo-(\d+)$/);
  scan('/run/netns', /^tsdemo-(\d+)-[cs]$/);
  scan('/etc/netns', /^tsdemo-(\d+)-c$/);
  return found;
}

const problems = preflight();
if (problems.length) {
  console.error(`npm test cannot run yet:\n${problems.map((p) => `- ${p}`).join('\n')}`);
  process.exit(1);
}
const before = new Set(leftovers());
const tap = spawnSync(process.execPath, [join(ROOT, 'node_modules/tap/dist/esm/run.mjs'), ...process.argv.slice(2)], { cwd: ROOT, stdio: 'inherit' });
const left = leftovers().filter((x) => !before.has(x));
if (left.length) {
  console.error(`npm test: the tests' runs of tunsteer left these behind (each named for a process that is gone):\n${left.map((x) => `  ${x}`).join('\n')}`);
  process.exit(tap.status || 1);
}
process.exit(tap.status ?? 1);
