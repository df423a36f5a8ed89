// The bench suite's report: the table (markdown) from the rows one run measured.
import { execFileSync } from 'node:child_process';

export interface ReportSettings {
  seconds: number;
  runs: number;
  wrkSeconds: number;
  /** The idle connections held, one count after the other. */
  idle: number[];
  quick: boolean;
}

export function render(rows: Row[], missing: string[], o: ReportSettings): string {
  const { seconds: SECONDS, runs: RUNS, wrkSeconds: WRK_SECONDS, idle: IDLE, quick: QUICK } = o;
  const kernel = rows.find((r) => r.path.startsWith('kernel'));
  const slirp = rows.find((r) => r.path.startsWith('slirp4netns'));
  const n = (x: number | null, d = 2) => (x === null || Number.isNaN(x) ? '-' : x.toFixed(d));
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : '-');
  const both = (k: keyof Row, r: Row, d = 2) => `${n(r[k] as number, d)} (${ratio(r[k] as number, kernel?.[k] as number)} k, ${ratio(r[k] as number, slirp?.[k] as number)} s)`;
  const version = (cmd: string[]) => {
    try {
      return execFileSync(cmd[0], cmd.slice(1), { encoding: 'utf8' }).split('\n')[0].trim();
    } catch (e) {
      // wrk prints its version and exits 1
      return (
        String((e as { stdout?: string }).stdout ?? '?')
          .split('\n')[0]
          .trim() || '?'
      );
    }
  };
  const lines = [
    `${new Date().toISOString()}; node ${process.version}; ${version(['iperf3', '--version'])}; ${version(['wrk', '--version']).replace(/ \[.*$/, '')}; ${version(['slirp4netns', '--version'])}; ` +
      `iperf3 ${SECONDS} s x ${RUNS} (median), wrk ${WRK_SECONDS} s x ${RUNS} (median), ${IDLE.join(' and ')} idle connections${QUICK ? ' (--quick)' : ''}`,
    '',
    'Throughput, Gbit/s (ratio to the kernel path "k" and to slirp4netns "s"):',
    '',
    '| path | 1 stream up | 1 stream down | 4 streams up | 4 streams down |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.path} | ${both('up1', r)} | ${both('down1', r)} | ${both('up4', r)} | ${both('down4', r)} |`),
    '',
    'Connections and latency (wrk against nginx /hello; latency with keep-alive), CPU and memory of the userspace process:',
    '',
    `| path | new conns/s | p50 ms, 1 conn | p99 ms, 1 conn | p50 ms, 64 conns | p99 ms, 64 conns | CPU s per GB | RSS bytes per idle conn (${IDLE[0]} held) |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.path} | ${both('connPerSec', r, 0)} | ${n(r.p50x1, 3)} | ${n(r.p99x1, 3)} | ${n(r.p50x64, 3)} | ${n(r.p99x64, 3)} | ${n(r.cpuPerGb)} | ${n(r.bytesPerIdle, 0)} |`,
    ),
    '',
    `Connect, request, close (wrk, 16 connections, a new connection per request), ${4} runs back to back; idle cost of the userspace process(es):`,
    '',
    '| path | conns/s, runs 1-4 | 4th / 1st | p50 ms | p99 ms | idle CPU, no conns | idle CPU, ' + IDLE[0] + ' conns held |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.path} | ${r.connRuns.map((x) => x.toFixed(0)).join(', ')} | ${ratio(r.connRuns.at(-1) ?? 0, r.connRuns[0])} | ${n(r.connP50, 3)} | ${n(r.connP99, 3)} | ${r.idleCpu === null ? '-' : `${r.idleCpu.toFixed(2)} %`} | ${r.heldCpu === null ? '-' : `${r.heldCpu.toFixed(2)} %`} |`,
    ),
    '',
    'Idle connections held (one count after the other, on the same process): RSS of the userspace process(es) with them held, RSS per connection over the fresh process, CPU while they sit idle:',
    '',
    `| path | ${IDLE.map((c) => `${c}: RSS MB, KB per conn, CPU`).join(' | ')} |`,
    `| --- | ${IDLE.map(() => '---:').join(' | ')} |`,
    ...rows
      .filter((r) => r.idleByCount.length)
      .map(
        (r) =>
          `| ${r.path} | ${IDLE.map((_, i) => r.idleByCount[i])
            .map((c) => (c ? `${(c.rss / 1048576).toFixed(1)}, ${(c.bytesPerIdle / 1024).toFixed(1)}, ${c.heldCpu.toFixed(2)} %` : '-'))
            .join(' | ')} |`,
      ),
    ...rows.filter((r) => r.note).map((r) => `- ${r.path}: ${r.note}`),
    '',
    "How busy the machine was while each row was measured (all processes, ours and others'):",
    '',
    ...rows.map((r) => `- ${r.path}: ${r.machine}`),
    '',
    'IPv6 beside IPv4, 1 stream, Gbit/s (the same run; slirp4netns and the REDIRECT/TPROXY paths are measured over IPv4 only):',
    '',
    '| path | IPv4 up | IPv6 up | IPv4 down | IPv6 down | IPv6/IPv4 up | IPv6/IPv4 down |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows
      .filter((r) => r.up1v6 !== null)
      .map((r) => `| ${r.path} | ${n(r.up1)} | ${n(r.up1v6)} | ${n(r.down1)} | ${n(r.down1v6)} | ${ratio(r.up1v6!, r.up1)} | ${ratio(r.down1v6!, r.down1)} |`),
    '',
    'Added p50 latency over the kernel path (ms): ' +
      rows
        .filter((r) => r !== kernel)
        .map((r) => `${r.path}: ${n(r.p50x1 - (kernel?.p50x1 ?? 0), 3)} (1 conn), ${n(r.p50x64 - (kernel?.p50x64 ?? 0), 3)} (64 conns)`)
        .join('; '),
    ...missing.map((m) => `Not measured: ${m}.`),
  ];
  return lines.join('\n');
}

export interface Row {
  path: string;
  up1: number;
  down1: number;
  up4: number;
  down4: number;
  connPerSec: number;
  p50x1: number;
  p99x1: number;
  p50x64: number;
  p99x64: number;
  cpuPerGb: number | null;
  bytesPerIdle: number | null;
  /** The userspace processes' CPU with no connection, and with the idle connections held, % of one core. */
  idleCpu: number | null;
  heldCpu: number | null;
  /** Each idle count held: how many, RSS then (bytes), per connection, CPU % of a core. */
  idleByCount: { held: number; rss: number; bytesPerIdle: number; heldCpu: number }[];
  /** New connections/s of each connect/request/close run, in the order run (back to back). */
  connRuns: number[];
  /** Latency of a connect/request/close (wrk, Connection: close), ms. */
  connP50: number;
  connP99: number;
  /** How busy the machine was while the row was measured. */
  machine: string;
  /** IPv6 single stream, when measured. */
  up1v6: number | null;
  down1v6: number | null;
  note: string;
}
