// The command line as text: which command, its flags, and what cannot be
// parsed at all (a UsageError). Values are checked in settings.test.ts.
import t from 'tap';
import { parseCommandLine } from '../../../src/cli/args.js';
import { UsageError } from '../../../src/cli/usage-error.js';
import { thrown } from '../../helpers/thrown.js';

t.test('up: flags as given, nothing checked or defaulted yet', async (t) => {
  const p = parseCommandLine(['up', '--mode', 'route-all', '--mtu', 'big', '--exclude', '203.0.113.0/24', '--exclude', 'x', '--dry-run']);
  t.same(p, { command: 'up', flags: { mode: 'route-all', mtu: 'big', exclude: ['203.0.113.0/24', 'x'], 'dry-run': true } });
});

t.test('help, in every spelling', async (t) => {
  t.same(parseCommandLine([]), { command: 'help', topic: undefined });
  t.same(parseCommandLine(['--help']), { command: 'help', topic: undefined });
  t.same(parseCommandLine(['up', '--mode', 'route-all', '-h']), { command: 'help', topic: 'up' });
  t.same(parseCommandLine(['run', '--help', '--', 'true']), { command: 'help', topic: 'run' });
});

t.test('run: its own flags before --, the program after', async (t) => {
  t.same(parseCommandLine(['run', '--host', 'a.example', '--', 'curl', '--mode', 'x']), {
    command: 'run',
    flags: { host: ['a.example'] },
    argv: ['curl', '--mode', 'x'],
  });
});

t.test('down and status: the state dir as given', async (t) => {
  t.same(parseCommandLine(['down']), { command: 'down', stateDir: undefined });
  t.same(parseCommandLine(['status', '--state-dir', '/tmp/x', '--json']), { command: 'status', stateDir: '/tmp/x', json: true });
  t.same(parseCommandLine(['check-config', 'a.yaml']), { command: 'check-config', file: 'a.yaml' });
});

const BAD: [string[], RegExp][] = [
  [['up', '--mode', 'route-all', '--frobnicate'], /frobnicate/],
  [['up', '--mode'], /--mode/],
  [['launch'], /unknown command "launch"/],
  [['run', '--'], /give the program after --/],
  [['run', 'true'], /give the program after --/],
  [['run', '--exclude', '192.0.2.0/24', '--', 'true'], /run: --exclude does not apply to run/],
  [['check-config'], /exactly one FILE/],
  [['status', '--state-dir'], /--state-dir/],
];
for (const [argv, re] of BAD) {
  t.test(`cannot parse ${argv.join(' ')}`, async (t) => {
    t.ok(thrown(() => parseCommandLine(argv)) instanceof UsageError, 'a UsageError (exit 2)');
    t.throws(() => parseCommandLine(argv), { message: re });
  });
}
