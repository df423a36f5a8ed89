// The benchmark suite as a smoke test: `bench/suite.ts --quick` runs to the
// end and prints its table with a figure for every path it could run. Its
// speeds are not asserted (the machine is shared); that it ran is.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/topology.js';

t.setTimeout(600_000);
const dir = mkdtempSync(join(tmpdir(), 'tsE-bench-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, 'table.md');

t.test('npm run bench -- --quick produces the table', async (t) => {
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/suite.ts'), '--quick', '--source', '--out', out], { cwd: ROOT, timeout: 540_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  t.equal(r.code, 0, r.stderr.slice(-2000));
  const table = readFileSync(out, 'utf8');
  for (const path of ['kernel (veth, no gateway)', 'tunsteer, defaults', 'tunsteer, best']) {
    const rows = table.split('\n').filter((l) => l.startsWith(`| ${path}`));
    t.equal(rows.length, 3, `${path}: a throughput row, a connections/latency row and an IPv6-beside-IPv4 row`);
    const figures = rows.slice(0, 2).flatMap((l) =>
      l
        .split('|')
        .slice(2, -1)
        .map((c) => parseFloat(c)),
    );
    t.ok(figures.length >= 8 && figures.slice(0, 5).every((x) => x > 0), `${path}: figures measured: ${rows.join(' / ')}`);
    const v6 = rows[2]
      .split('|')
      .slice(2, -1)
      .map((c) => parseFloat(c));
    t.ok(v6.length === 6 && v6.every((x) => x > 0), `${path}: IPv6 and IPv4 single-stream figures: ${rows[2]}`);
  }
  t.match(table, /slirp4netns \(MTU 65520\)|Not measured: slirp4netns/, 'slirp4netns measured or its absence said');
  t.match(table, /pasta \(MTU 65520\)|Not measured: pasta/, 'pasta measured or why not said');
  // without a terminal the progress line is a line per step on stderr: where it is and about how long is left
  t.match(r.stderr, /^bench \[\d+\/\d+\] kernel: bulk TCP · \d+:\d\d elapsed, about \d+:\d\d left$/m, 'a progress line per step');
  t.match(r.stderr, /^bench \[\d+\/\d+\] tunsteer: HTTP \(wrk\) · /m);
  t.match(r.stderr, /^bench: \d+ paths measured in \d+:\d\d$/m, 'and how long it all took');
});
