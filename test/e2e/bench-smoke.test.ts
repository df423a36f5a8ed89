// The benchmark suite as a smoke test: `bench/suite.ts --quick` runs to the
// end and prints its table with a figure for every path it could run. Its
// speeds are not asserted (the machine is shared); that it ran is.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/topology.js';

// the worker x MTU grid, offloads, and four connect/close runs per path since issue 16
t.setTimeout(1_200_000);
const dir = mkdtempSync(join(tmpdir(), 'tsE-bench-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const out = join(dir, 'table.md');

t.test('npm run bench -- --quick produces the table', async (t) => {
  const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/suite.ts'), '--quick', '--source', '--out', out], { cwd: ROOT, timeout: 1_140_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  t.equal(r.code, 0, r.stderr.slice(-2000));
  const table = readFileSync(out, 'utf8');
  const cores = String(availableParallelism());
  for (const [path, v6path] of [
    ['kernel (veth, no gateway)', true],
    ['tunsteer, defaults', true],
    ['tunsteer, --workers 1', false],
    [`tunsteer, --workers ${cores}`, false],
    ['tunsteer, MTU 1500', false],
    ['tunsteer, MTU 1500, --workers 1', false],
    ['tunsteer, MTU 1500, --no-tun-offload', false],
    ['tunsteer, best (--no-http-inspect, 4 MB buffers)', true],
  ] as const) {
    const gateway = !path.startsWith('kernel');
    const rows = table.split('\n').filter((l) => l.startsWith(`| ${path} |`));
    const expected = 3 + (gateway ? 1 : 0) + (v6path ? 1 : 0);
    t.equal(
      rows.length,
      expected,
      `${path}: a throughput row, a connections/latency row, a connect/close row${gateway ? ', an idle row' : ''}${v6path ? ' and an IPv6-beside-IPv4 row' : ''}`,
    );
    const figures = rows.slice(0, 2).flatMap((l) =>
      l
        .split('|')
        .slice(2, -1)
        .map((c) => parseFloat(c)),
    );
    t.ok(figures.length >= 8 && figures.slice(0, 5).every((x) => x > 0), `${path}: figures measured: ${rows.join(' / ')}`);
    const churn = rows[2]
      .split('|')[2]
      .split(',')
      .map((c) => parseFloat(c));
    t.ok(churn.length === 4 && churn.every((x) => x > 0), `${path}: four connect/close runs back to back: ${rows[2]}`);
    if (gateway) t.ok(parseFloat(rows[3].split('|')[2]) > 0, `${path}: RSS with the idle connections held: ${rows[3]}`);
    if (!v6path) continue;
    const v6 = rows[rows.length - 1]
      .split('|')
      .slice(2, -1)
      .map((c) => parseFloat(c));
    t.ok(v6.length === 6 && v6.every((x) => x > 0), `${path}: IPv6 and IPv4 single-stream figures: ${rows[rows.length - 1]}`);
  }
  for (const chart of ['throughput', 'conn-rate', 'latency']) {
    t.match(readFileSync(join(dir, `table-${chart}.svg`), 'utf8'), /^<svg /, `the ${chart} chart is written beside the table`);
    t.match(table, `(table-${chart}.svg)`, 'and shown in it');
  }
  t.match(table, /machine busy [\d.]+ of \d+ cores/, 'each row says how busy the machine was');
  t.match(table, /slirp4netns \(MTU 65520\)|Not measured: slirp4netns/, 'slirp4netns measured or its absence said');
  t.match(table, /pasta \(MTU 65520\)|Not measured: pasta/, 'pasta measured or why not said');
  // without a terminal the progress line is a line per step on stderr: where it is and about how long is left
  t.match(r.stderr, /^bench \[\d+\/\d+\] kernel: bulk TCP · \d+:\d\d elapsed, about \d+:\d\d left$/m, 'a progress line per step');
  t.match(r.stderr, /^bench \[\d+\/\d+\] tunsteer: HTTP \(wrk\) · /m);
  t.match(r.stderr, /^bench: \d+ paths measured in \d+:\d\d$/m, 'and how long it all took');
});
