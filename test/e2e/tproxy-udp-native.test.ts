// The addon's TPROXY UDP calls against the kernel, in a namespace of the test's
// own (lo only): datagrams read with client and original destination through
// the readable watcher, replies sent from a foreign address by the raw reply
// socket after the process dropped root, IPv4 and IPv6; ICMP port unreachable
// from a foreign address, which a connected client socket takes as
// ECONNREFUSED; errors with codes.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

if (process.getuid?.() !== 0) t.plan(0, 'needs root');

const root = fileURLToPath(new URL('../..', import.meta.url));
const helper = fileURLToPath(new URL('../helpers/tproxy-udp-check.ts', import.meta.url));

t.test('transparent UDP socket, watcher, udpRecv, reply sockets, error codes', async (t) => {
  const ns = `tsT-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // gone already
    }
  });
  execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  // documentation prefixes on lo, in this namespace only: a socket may connect to them (the port-unreachable checks)
  execFileSync('ip', ['netns', 'exec', ns, 'ip', 'route', 'add', '192.0.2.0/24', 'dev', 'lo']);
  execFileSync('ip', ['netns', 'exec', ns, 'ip', '-6', 'route', 'add', '2001:db8::/64', 'dev', 'lo']);
  const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', helper], { cwd: root, timeout: 60_000, encoding: 'utf8' });
  const { checks } = JSON.parse(out.trim().split('\n').pop()!) as { checks: Record<string, true | string> };
  t.ok(Object.keys(checks).length >= 25, `${Object.keys(checks).length} checks ran`);
  for (const [name, v] of Object.entries(checks)) t.equal(v, true, name);
});
