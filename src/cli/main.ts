#!/usr/bin/env node
// The tunsteer CLI: parse, dispatch to one command (src/cli/commands), map
// failures to exit codes (usage-error.ts: 2 = the user's input, 1 = running
// failed). Hidden commands start the other processes tunsteer is made of:
// the data plane (the supervisor's child), run's helper in a new namespace,
// and the demo's server and client (src/demo).
import { parseCommandLine } from './args.js';
import { helpPage } from './help.js';
import { exitCodeOf, isUsageError } from './usage-error.js';

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '__tun-inside') {
    const { runTunInside } = await import('../run/run-inside.js');
    return runTunInside(argv.slice(1));
  }
  if (argv[0] === '__demo-server') return (await import('../demo/demo-server.js')).runDemoServer(argv.slice(1));
  if (argv[0] === '__demo-fetch') return (await import('../demo/demo-fetch.js')).runDemoFetch(argv.slice(1));
  if (argv[0] === '__data-plane') {
    const { runDataPlaneChild } = await import('../data-plane/child.js');
    return runDataPlaneChild(argv.slice(1));
  }
  const parsed = parseCommandLine(argv);
  switch (parsed.command) {
    case 'help':
      process.stdout.write(helpPage(parsed.topic)!);
      return 0;
    case 'version':
      process.stdout.write(`tunsteer ${(await import('./version.js')).version()} (node ${process.version})\n`);
      return 0;
    case 'demo':
      return (await import('./commands/demo.js')).demo();
    case 'up':
      return (await import('./commands/up.js')).up(parsed.flags);
    case 'run':
      return (await import('./commands/run.js')).run(parsed.flags, parsed.argv);
    case 'down':
      return (await import('./commands/down.js')).down(parsed.stateDir);
    case 'status':
      return (await import('./commands/status.js')).status(parsed.stateDir, parsed.json);
    case 'proxy':
      return (await import('./commands/proxy.js')).proxy(parsed.flags);
    case 'doctor':
      return (await import('./commands/doctor.js')).doctor(parsed);
    case 'reload':
      return (await import('./commands/reload.js')).reload(parsed.stateDir, parsed.force);
    case 'top':
      return (await import('./commands/top.js')).top(parsed.options);
    case 'check-config':
      return (await import('./commands/check-config.js')).checkConfig(parsed.file);
  }
}

const argv = process.argv.slice(2);
/** Where a usage error points: the command's own page when there is one. */
const helpHint = argv[0] !== undefined && argv[0] !== 'help' && helpPage(argv[0]) !== undefined ? `tunsteer ${argv[0]} --help` : 'tunsteer --help';

main(argv).then(
  (code) => {
    // `up` and `proxy` keep the process alive themselves (-1); the others end here.
    if (code !== -1) process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`tunsteer: ${e.message}\n${isUsageError(e) ? `(see ${helpHint})\n` : ''}`);
    // exit now: a half-started gateway may hold a TUN and timers open (the exit handlers restore)
    process.exit(exitCodeOf(e));
  },
);
