// The suite's table as SVG charts, written beside the --out file (FILE-NAME.svg)
// and linked from it: throughput per path and direction, the connection rate
// over consecutive runs, latency percentiles.
import { writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { barChart } from './charts.js';
import type { Row } from './suite-report.js';

/** Writes the charts; returns the markdown that shows them. */
export function writeCharts(rows: Row[], out: string): string {
  const base = basename(out).replace(/\.md$/, '');
  const charts: [string, string, string][] = [
    [
      'throughput',
      'Bulk TCP throughput',
      barChart(
        'Bulk TCP throughput (iperf3, median)',
        ['1 stream up', '1 stream down', '4 streams up', '4 streams down'],
        'Gbit/s',
        rows.map((r) => ({ label: r.path, values: [r.up1, r.down1, r.up4, r.down4] })),
      ),
    ],
    [
      'conn-rate',
      'Connection rate over consecutive runs',
      barChart(
        'Connect/request/close per second, runs back to back',
        ['run 1', 'run 2', 'run 3', 'run 4'],
        'connections/s (wrk, 16 connections, Connection: close)',
        rows.map((r) => ({ label: r.path, values: r.connRuns })),
        0,
      ),
    ],
    [
      'latency',
      'Latency percentiles',
      barChart(
        'Latency (wrk)',
        ['p50, 1 conn', 'p99, 1 conn', 'p50, 64 conns', 'p99, 64 conns', 'p99, connect/close'],
        'ms',
        rows.map((r) => ({ label: r.path, values: [r.p50x1, r.p99x1, r.p50x64, r.p99x64, r.connP99] })),
        3,
      ),
    ],
  ];
  const md: string[] = [''];
  for (const [name, title, svg] of charts) {
    const file = `${base}-${name}.svg`;
    writeFileSync(join(dirname(out), file), svg);
    md.push(`![${title}](${file})`, '');
  }
  return md.join('\n');
}
