// The body of each differential test file: one gateway for the mode, then the
// generated scenarios over IPv4 and IPv6, each compared with the kernel path.
import type { Test } from 'tap';
import type fc from 'fast-check';
import { diffRuns, runDiff, summary } from './harness.js';
import type { Mode } from './known-differences.js';
import type { Scenario } from './scenario.js';
import { setupMode } from './setups.js';

export async function diffTest(t: Test, mode: Mode, arb: fc.Arbitrary<Scenario>, what: string, opts: { mtu?: number; runs?: number } = {}): Promise<void> {
  t.setTimeout(900_000);
  const setup = await setupMode(t, mode, opts);
  for (const family of [4, 6] as const) {
    await t.test(`${mode} IPv${family}${opts.mtu ? ` MTU ${opts.mtu}` : ''}: ${what} end as over the kernel path`, async (t) => {
      const ctx = { mode, family, mtu: setup.mtu } as const;
      const dropsBefore = await setup.tunQueueDrops();
      const r = await runDiff(family === 4 ? setup.v4 : setup.v6, ctx, arb, diffRuns(opts.runs ?? 300));
      t.comment(`packets dropped on the TUN's queue during the run: ${(await setup.tunQueueDrops()) - dropsBefore}`);
      const log = (port: number) => setup.gatewayLog().filter((l) => l.includes(`:${port}"`));
      t.comment(summary(ctx, r, log));
      t.same(r.kernelOffModel, [], 'the kernel path does what each script says');
      t.equal(r.unexplained.length, 0, summary(ctx, r, log));
    });
  }
}
