// A small stand-alone entry to route-all routing, for the end-to-end tests
// (run as a worker inside a namespace) and for debugging on a host:
//
//   node --import tsx test/helpers/route-cli.ts up   --tun NAME --state-dir DIR [--exclude CIDR]... [--table N] [--priority N] [--rp-filter 0|1|2]
//   node --import tsx test/helpers/route-cli.ts plan --tun NAME [--exclude CIDR]... [--table N] [--priority N]
//   node --import tsx test/helpers/route-cli.ts down --state-dir DIR [--force]
//
// `up` applies, prints one JSON line {"ready":true,...} and holds the routing
// until SIGINT/SIGTERM/SIGHUP, then restores and exits 130/143/129. `down`
// prints one JSON line and exits 0 (also when there was nothing to do), 1 when
// refused or failed (the reason on stderr). `tunsteer` itself is src/cli/main.ts.
import { parseArgs } from 'node:util';
import { restoreFromJournal } from '../../src/routing/restore.js';
import { installExitHandlers } from '../../src/gateway/exit-handlers.js';
import { dryRunRouteAll, upRouteAll } from '../../src/routing/route-all.js';
import type { RoutePlanConfig } from '../../src/routing/route-plan.js';

function planConfig(v: Record<string, unknown>): RoutePlanConfig {
  const rp = v['rp-filter'] as string | undefined;
  return {
    tunName: (v.tun as string | undefined) ?? 'tunsteer0',
    table: Number((v.table as string | undefined) ?? 2022),
    priorityBase: Number((v.priority as string | undefined) ?? 9000),
    excludes: (v.exclude as string[] | undefined) ?? [],
    ...(rp === undefined ? {} : { tunRpFilter: Number(rp) as 0 | 1 | 2 }),
  };
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const { values: v } = parseArgs({
    args: rest,
    options: {
      tun: { type: 'string' },
      'state-dir': { type: 'string' },
      exclude: { type: 'string', multiple: true },
      table: { type: 'string' },
      priority: { type: 'string' },
      'rp-filter': { type: 'string' },
      force: { type: 'boolean' },
    },
  });
  const stateDir = (v['state-dir'] as string | undefined) ?? '/run/tunsteer';
  switch (cmd) {
    case 'plan': {
      const r = dryRunRouteAll(planConfig(v));
      process.stdout.write(`${r.lines.join('\n')}\n`);
      return 0;
    }
    case 'up': {
      installExitHandlers(() => {
        restoreFromJournal(stateDir, { ownOnly: true });
      });
      const h = upRouteAll({ ...planConfig(v), stateDir, log: (l) => process.stderr.write(`${l}\n`) });
      process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, uplink: h.uplink, steps: h.applied.length })}\n`);
      setInterval(() => {}, 1 << 30); // hold until a signal
      return -1;
    }
    case 'down': {
      const r = restoreFromJournal(stateDir, { force: v.force === true, log: (l) => process.stderr.write(`${l}\n`) });
      process.stdout.write(`${JSON.stringify(r)}\n`);
      return 0;
    }
    default:
      process.stderr.write('usage: route-cli.ts up|plan|down [options] (see the header of test/helpers/route-cli.ts)\n');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`route-cli: ${e.message}\n`);
    process.exitCode = 1;
  },
);
