#!/usr/bin/env node
// The tunsteer CLI: parse, dispatch, map failures to exit codes
// (2 = usage, 1 = runtime failure).
import { HELP, parseCli, UsageError } from './args.js';
import { ConfigError } from '../config/load-config.js';

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '__tun-inside') {
    const { runTunInside } = await import('../run/run-inside.js');
    return runTunInside(argv.slice(1));
  }
  if (argv[0] === '__data-plane') {
    const { runDataPlaneChild } = await import('../data-plane/child.js');
    return runDataPlaneChild();
  }
  let args;
  try {
    args = parseCli(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`tunsteer: ${e.message}\n(see tunsteer --help)\n`);
      return 2;
    }
    throw e;
  }
  switch (args.command) {
    case 'help':
      process.stdout.write(HELP);
      return 0;
    case 'up': {
      const { runUp } = await import('../gateway/gateway.js');
      return runUp(args);
    }
    case 'down': {
      const { runDown } = await import('./commands/status.js');
      return runDown(args);
    }
    case 'status': {
      const { runStatus } = await import('./commands/status.js');
      return runStatus(args);
    }
    case 'run': {
      const { runRun } = await import('../run/run-command.js');
      return runRun(args);
    }
    case 'proxy': {
      const { runProxy } = await import('./commands/proxy.js');
      return runProxy(args);
    }
    case 'check-config': {
      const { runCheckConfig } = await import('./commands/proxy.js');
      return runCheckConfig(args);
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // `up` keeps the process alive itself; the others end here.
    if (code !== -1) process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`tunsteer: ${e.message}\n`);
    // a config that parses but cannot be used (an unset variable) is still the user's input
    // exit now: a half-started gateway may hold a TUN and timers open (the exit handlers restore)
    process.exit(e instanceof ConfigError ? 2 : 1);
  },
);
