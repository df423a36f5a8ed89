// `tunsteer reload` and `tunsteer top` on the command line, and top's table.
import t from 'tap';
import { parseCommandLine } from '../../../src/cli/args.js';
import { UsageError } from '../../../src/cli/usage-error.js';
import { humanBytes, renderTop, type TopSnapshot } from '../../../src/cli/commands/top.js';
import { thrown } from '../../helpers/thrown.js';

t.test('reload: the state dir and --force as given', async (t) => {
  t.same(parseCommandLine(['reload']), { command: 'reload', stateDir: undefined, force: false });
  t.same(parseCommandLine(['reload', '--state-dir', '/run/x', '--force']), { command: 'reload', stateDir: '/run/x', force: true });
  t.ok(thrown(() => parseCommandLine(['reload', '--config', 'x'])) instanceof UsageError, 'reload takes the file up runs with, not another');
});

t.test('top: defaults, and its flags checked', async (t) => {
  t.same(parseCommandLine(['top']), { command: 'top', options: { control: '127.0.0.1:9090', once: false, sort: 'bytes', intervalMs: 1000 } });
  t.same(parseCommandLine(['top', '--control', '127.0.0.1:9191', '--once', '--filter', 'corp', '--sort', 'age', '--secret-file', '/s', '--interval', '500']), {
    command: 'top',
    options: { control: '127.0.0.1:9191', secretFile: '/s', once: true, filter: 'corp', sort: 'age', intervalMs: 500 },
  });
  t.match(
    thrown(() => parseCommandLine(['top', '--sort', 'speed'])),
    /--sort: "speed" is not bytes, age, host or rule/,
  );
  t.match(
    thrown(() => parseCommandLine(['top', '--interval', '5'])),
    /--interval/,
  );
  t.ok(thrown(() => parseCommandLine(['top', '--secret', 'x'])) instanceof UsageError, 'no secret on the command line (ps shows it)');
});

const now = 1_700_000_000_000;
const snap: TopSnapshot = {
  uploadTotal: 5 * 1024 * 1024,
  downloadTotal: 3 * 1024 ** 3,
  rate: { up: 2048, down: 1_500_000 },
  connections: [
    {
      id: '1',
      inbound: 'tun',
      proto: 'tls',
      src: '10.0.0.2:40000',
      dst: '203.0.113.10:443',
      host: 'api.example',
      rule: 'web',
      action: 'proxy',
      upstream: 'corp',
      up: 100,
      down: 200,
      start: now - 65_000,
    },
    { id: '2', inbound: 'socks5', proto: 'tcp', src: '127.0.0.1:5000', dst: '198.51.100.7:22', rule: 'default', action: 'direct', up: 5_000_000, down: 20, start: now - 2_000 },
  ],
};

t.test('top: one row a connection, the biggest first, filtered, cut to the width', async (t) => {
  const text = renderTop(snap, { sort: 'bytes' }, now, 200);
  const lines = text.trimEnd().split('\n');
  t.match(lines[0], /^2 connections {2}up 2\.0 KiB\/s {2}down 1\.4 MiB\/s {2}\(total up 5\.0 MiB, down 3\.0 GiB\)$/);
  t.match(lines[1], /^ID\s+INBOUND\s+SOURCE\s+DESTINATION\s+HOST\s+RULE\s+VIA\s+UP\s+DOWN\s+AGE$/);
  t.match(lines[2], /^2\s+socks5\s+127\.0\.0\.1:5000\s+198\.51\.100\.7:22\s+default\s+direct\s+4\.8 MiB\s+20 B\s+2s$/);
  t.match(lines[3], /^1\s+tun\s+.*api\.example\s+web\s+corp\s+100 B\s+200 B\s+1m05s$/);
  t.match(renderTop(snap, { sort: 'age' }, now, 200).split('\n')[2], /^1 /, 'oldest first by age');
  const filtered = renderTop(snap, { sort: 'bytes', filter: 'CORP' }, now, 200).trimEnd().split('\n');
  t.equal(filtered.length, 3);
  t.match(filtered[0], /^1 of 2 connections/);
  t.ok(
    renderTop(snap, { sort: 'bytes' }, now, 40)
      .split('\n')
      .every((l) => l.length <= 40),
    'no line wider than the terminal',
  );
  t.equal(humanBytes(0), '0 B');
  t.equal(humanBytes(1536), '1.5 KiB');
});
