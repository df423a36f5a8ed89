// The differential harness: every scenario runs twice at once, over the
// kernel path and through the gateway, and the two results must be the same
// (bytes received by each side: length and sha256; how each side saw the
// connection end), unless an entry of known-differences.ts explains it. The
// kernel path must also match what the script says (expected()), so a flaky
// scenario shows up as such rather than as a gateway bug.
//
// Knobs: TUNSTEER_DIFF_SEED (default: fixed), TUNSTEER_DIFF_RUNS (scenarios
// per mode and family), TUNSTEER_DIFF_CONCURRENCY.
import fc from 'fast-check';
import type { Agent } from './agent.js';
import { explain, type DiffContext } from './known-differences.js';
import { describe, expected, type PairResult, type Scenario, type SideResult } from './scenario.js';
import { shrink } from './shrink.js';

export const DIFF_SEED = Number(process.env.TUNSTEER_DIFF_SEED ?? 1414);
export const diffRuns = (ciDefault: number) => Number(process.env.TUNSTEER_DIFF_RUNS ?? ciDefault);
const CONCURRENCY = Number(process.env.TUNSTEER_DIFF_CONCURRENCY ?? 12);

export interface Paths {
  client: Agent;
  server: Agent;
  /** the address the client dials for each path */
  kernelHost: string;
  gatewayHost: string;
  /** the servers' addresses of both paths (UDP echo sockets bind each) */
  serverAddrs: string[];
  /** packets dropped on the TUN's queue so far (TUN modes) */
  tunQueueDrops?: () => Promise<number>;
}

let port = 20_000;
const nextPort = () => {
  port = port >= 60_000 ? 20_000 : port + 1;
  return port;
};

async function runOne(p: Paths, host: string, s: Scenario): Promise<PairResult & { port: number }> {
  const script = { ...s, limitMs: s.proto === 'udp' ? 15_000 : 20_000, waitMs: 400 };
  const at = nextPort();
  const noServer = s.proto === 'tcp' ? s.end.kind === 'refused' : s.closedPort;
  let server: Promise<SideResult> | null = null;
  if (!noServer) {
    const l = p.server.listen(at, s.proto, script, p.serverAddrs);
    await l.ready;
    server = l.result;
  }
  const c = await p.client.connect(host, at, s.proto, script);
  // a UDP echo has nothing to report: it stops by itself once the client is quiet
  return { c, s: server && s.proto === 'tcp' ? await server : null, port: at };
}

/** Both paths at once; `port` is the gateway path's (to find its log line). */
export async function runPair(p: Paths, s: Scenario): Promise<{ kernel: PairResult; gateway: PairResult; port: number }> {
  const [k, g] = await Promise.all([runOne(p, p.kernelHost, s), runOne(p, p.gatewayHost, s)]);
  return { kernel: { c: k.c, s: k.s }, gateway: { c: g.c, s: g.s }, port: g.port };
}

const sideSame = (a: SideResult | null, b: SideResult | null) => (a === null ? b === null : b !== null && a.rx === b.rx && a.sha === b.sha && a.end === b.end);
export const pairSame = (a: PairResult, b: PairResult) => sideSame(a.c, b.c) && sideSame(a.s, b.s);

function matchesModel(s: Scenario, k: PairResult): boolean {
  const e = expected(s);
  if (k.c.rx !== e.c.rx || k.c.end !== e.c.end) return false;
  if (e.s === null) return k.s === null;
  return k.s !== null && k.s.rx === e.s.rx && k.s.end === e.s.end;
}

/** Shrinks a failing scenario (60 s at most) and prints it with both results, ready for TUNSTEER_DIFF_SCENARIO. */
async function shrinkReport(p: Paths, ctx: DiffContext, s: Scenario): Promise<string> {
  const fails = async (c: Scenario) => {
    const { kernel, gateway } = await runPair(p, c);
    return !pairSame(kernel, gateway) && explain(ctx, c, kernel, gateway) === undefined;
  };
  const small = await shrink(s, fails, Date.now() + 60_000);
  const again = await runPair(p, small);
  return `TUNSTEER_DIFF_SCENARIO='${describe(small)}'\n    kernel:  ${JSON.stringify(again.kernel)}\n    gateway: ${JSON.stringify(again.gateway)}`;
}

export interface DiffReport {
  runs: number;
  /** the kernel path did something the script does not predict (a harness problem) */
  kernelOffModel: { scenario: string; kernel: PairResult }[];
  /** differences explained by known-differences.ts, by id */
  known: Record<string, number>;
  /** differences nothing explains: bugs */
  unexplained: { index: number; scenario: Scenario; kernel: PairResult; gateway: PairResult; port: number }[];
  /** the first unexplained difference, shrunk */
  shrunk?: string;
  ms: number;
}

/**
 * Samples `runs` scenarios from `arb` with the fixed seed, runs them
 * CONCURRENCY at a time, and shrinks the first unexplained difference (one
 * candidate at a time). TUNSTEER_DIFF_SCENARIO='{...}' runs that one scenario `runs` times.
 */
export async function runDiff(p: Paths, ctx: DiffContext, arb: fc.Arbitrary<Scenario>, runs: number, seed = DIFF_SEED): Promise<DiffReport> {
  const started = Date.now();
  const one = process.env.TUNSTEER_DIFF_SCENARIO;
  const scenarios = one ? Array.from({ length: runs }, () => JSON.parse(one) as Scenario) : fc.sample(arb, { seed, numRuns: runs });
  const report: DiffReport = { runs: scenarios.length, kernelOffModel: [], known: {}, unexplained: [], ms: 0 };
  // a broken kernel path would only time out, scenario after scenario: check it first
  const probe: Scenario = {
    proto: 'tcp',
    phases: [
      { from: 'c', n: 10, pause: 0 },
      { from: 's', n: 10, pause: 0 },
    ],
    slow: null,
    end: { kind: 'fin', who: 'c', tail: 0 },
    seed: 1,
  };
  const probed = await runPair(p, probe);
  if (!matchesModel(probe, probed.kernel)) throw new Error(`the kernel path does not work: ${JSON.stringify(probed.kernel)}`);
  const dropsAtStart = (await p.tunQueueDrops?.()) ?? 0;
  let next = 0;
  const worker = async () => {
    while (next < scenarios.length) {
      const index = next++;
      const s = scenarios[index];
      const { kernel, gateway, port } = await runPair(p, s);
      if (!matchesModel(s, kernel)) report.kernelOffModel.push({ scenario: describe(s), kernel });
      if (pairSame(kernel, gateway)) continue;
      const dropsSeen = ((await p.tunQueueDrops?.()) ?? 0) > dropsAtStart;
      const known = explain({ ...ctx, tunDropsSeen: dropsSeen }, s, kernel, gateway);
      if (known) report.known[known.id] = (report.known[known.id] ?? 0) + 1;
      else report.unexplained.push({ index, scenario: s, kernel, gateway, port });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const first = report.unexplained.sort((a, b) => a.index - b.index)[0];
  if (first) report.shrunk = await shrinkReport(p, ctx, first.scenario);
  report.ms = Date.now() - started;
  return report;
}

/** A few lines for t.comment and failure messages; `log` finds the gateway's log lines for a port. */
export function summary(ctx: DiffContext, r: DiffReport, log: (port: number) => string[] = () => []): string {
  const lines = [
    `${ctx.mode} IPv${ctx.family}: ${r.runs} scenarios in ${(r.ms / 1000).toFixed(1)} s; known differences ${JSON.stringify(r.known)}; ` +
      `unexplained ${r.unexplained.length}; kernel off the model ${r.kernelOffModel.length}`,
  ];
  for (const u of r.unexplained.slice(0, 5)) {
    lines.push(`  #${u.index} ${describe(u.scenario)}\n    kernel:  ${JSON.stringify(u.kernel)}\n    gateway: ${JSON.stringify(u.gateway)}`);
    for (const l of log(u.port)) lines.push(`    gateway log: ${l}`);
  }
  if (r.shrunk) lines.push(`  shrunk: ${r.shrunk}`);
  for (const k of r.kernelOffModel.slice(0, 3)) lines.push(`  kernel off the model: ${k.scenario} -> ${JSON.stringify(k.kernel)}`);
  return lines.join('\n');
}
