// Route-all routing for real, inside throwaway namespaces:
//
//   ns (gateway side)                          peer
//   ├─ vA… 192.0.2.1/24  ──── veth ────  vB… 192.0.2.2/24 (+ 203.0.113.5/32 on lo)
//   ├─ default via 192.0.2.2
//   └─ tun0 198.18.0.1/30 (persistent TUN, no reader: a stand-in for the gateway's)
//
// The worker is test/helpers/route-cli.ts run with `ip netns exec` (same PID).
// Every test compares `ip route/rule` text before and after, byte for byte.
import t from 'tap';
import { mkdtempSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import type { JournalData } from '../../src/routing/route-journal.js';
import { createNetns, nsExec, snapshotRouting, spawnInNs, spawnNodeInNs, veth, type NsChild, type RoutingSnapshot, type TeardownHost } from '../helpers/netns.js';

type T = TeardownHost;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'test/helpers/route-cli.ts');
const UPLINK_SRC = '192.0.2.1';
const GW = '192.0.2.2';

interface World {
  ns: string;
  peer: string;
  aIf: string;
  dir: string;
  before: RoutingSnapshot;
}

async function world(t: T, opts: { defaultRoute?: boolean } = {}): Promise<World> {
  const ns = await createNetns(t, 'tsR-');
  const peer = await createNetns(t, 'tsR-');
  const { aIf } = await veth(ns, peer, { aAddr: `${UPLINK_SRC}/24`, bAddr: `${GW}/24` });
  if (opts.defaultRoute !== false) await nsExec(ns, ['ip', 'route', 'add', 'default', 'via', GW]);
  await nsExec(ns, ['ip', 'tuntap', 'add', 'tun0', 'mode', 'tun']);
  // IPv4-only stand-in: without this, the first reader that opens it (the
  // rp_filter test) brings a link-local IPv6 address and its routes along.
  await nsExec(ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.tun0.disable_ipv6=1']);
  await nsExec(ns, ['ip', 'addr', 'add', '198.18.0.1/30', 'dev', 'tun0']);
  await nsExec(ns, ['ip', 'link', 'set', 'tun0', 'up']);
  const tmp = mkdtempSync(join(tmpdir(), 'tsR-e2e-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const dir = join(tmp, 'state');
  return { ns, peer, aIf, dir, before: await snapshotRouting(ns) };
}

async function up(
  t: T,
  w: World,
  extra: string[] = [],
): Promise<{ child: NsChild; ready: { pid: number; uplink: { dev: string; gateway?: string; source: string }; steps: number } }> {
  const child = spawnNodeInNs(t, w.ns, CLI, ['up', '--tun', 'tun0', '--state-dir', w.dir, ...extra], { cwd: ROOT });
  const line = await child.waitForLine((l) => l.startsWith('{"ready"'), 60_000);
  return { child, ready: JSON.parse(line) };
}

/** route-cli in a namespace, to completion. */
function cli(ns: string, args: string[]) {
  return nsExec(ns, [process.execPath, '--import', 'tsx', CLI, ...args], { allowFail: true, cwd: ROOT, timeoutMs: 60_000 });
}

async function routeGet(ns: string, dst: string, from?: string): Promise<{ dev: string; gateway?: string; prefsrc?: string }> {
  const r = await nsExec(ns, ['ip', '-j', 'route', 'get', dst, ...(from ? ['from', from] : [])]);
  return (JSON.parse(r.stdout) as { dev: string; gateway?: string; prefsrc?: string }[])[0];
}

function journal(w: World): JournalData | null {
  const p = join(w.dir, 'routes.json');
  return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null;
}

t.test('steers everything into the TUN except the uplink source, excludes and the LAN; SIGTERM restores byte for byte', async (t) => {
  const w = await world(t);
  const { child, ready } = await up(t, w, ['--exclude', '198.51.100.0/24']);
  t.strictSame(ready.uplink, { dev: w.aIf, gateway: GW, source: UPLINK_SRC }, 'uplink discovered');
  t.equal(ready.steps, 7);
  t.equal(ready.pid, child.pid, 'ip netns exec keeps the PID');

  t.equal((await routeGet(w.ns, '203.0.113.5')).dev, 'tun0', 'internet → TUN');
  t.equal((await routeGet(w.ns, '203.0.113.5')).prefsrc, '198.18.0.1', 'with the TUN address as source');
  const fromSrc = await routeGet(w.ns, '203.0.113.5', UPLINK_SRC);
  t.equal(fromSrc.dev, w.aIf, 'from the uplink address → uplink');
  t.equal(fromSrc.gateway, GW);
  t.equal((await routeGet(w.ns, '198.51.100.7')).dev, w.aIf, 'excluded CIDR → uplink');
  t.equal((await routeGet(w.ns, '198.51.100.7')).gateway, GW);
  t.equal((await routeGet(w.ns, '198.51.101.7')).dev, 'tun0', 'just outside the exclude → TUN');
  t.equal((await routeGet(w.ns, GW)).dev, w.aIf, 'the uplink gateway stays direct');
  t.equal((await routeGet(w.ns, '192.0.2.77')).dev, w.aIf, 'the LAN stays on-link');
  t.equal((await routeGet(w.ns, '198.18.0.2')).dev, 'tun0', 'the TUN subnet');

  const rules = (await nsExec(w.ns, ['ip', 'rule', 'show'])).stdout;
  t.equal(
    rules,
    [
      '0:\tfrom all lookup local',
      `9000:\tfrom ${UPLINK_SRC} lookup main`,
      `9001:\tfrom ${UPLINK_SRC} unreachable`,
      `9002:\tfrom all to ${GW} lookup main`,
      '9003:\tfrom all to 198.51.100.0/24 lookup main',
      '9004:\tfrom all lookup main suppress_prefixlength 0',
      '9005:\tfrom all lookup 2022',
      '32766:\tfrom all lookup main',
      '32767:\tfrom all lookup default',
      '',
    ].join('\n'),
  );
  t.equal((await nsExec(w.ns, ['ip', 'route', 'show', 'table', '2022'])).stdout.trim(), 'default dev tun0 scope link linkdown');

  const j = journal(w)!;
  t.equal(j.pid, child.pid);
  t.equal(j.mode, 'route-all');
  t.equal(j.tunName, 'tun0');
  t.equal(j.netns.inode, statSync(`/run/netns/${w.ns}`).ino, 'journal names the namespace by inode');
  t.equal(j.netns.name, w.ns, '... and by name');
  t.equal(j.steps.length, 7);
  t.equal(j.applied, 7);

  // A second gateway on the same state dir is refused while the first lives, and changes nothing.
  const during = await snapshotRouting(w.ns);
  const second = await cli(w.ns, ['up', '--tun', 'tun0', '--state-dir', w.dir]);
  t.equal(second.code, 1, 'second gateway exits 1');
  t.match(second.stderr, `state dir ${w.dir} is in use by tunsteer pid ${child.pid}`);
  t.equal((await snapshotRouting(w.ns)).text, during.text, 'the refused gateway touched nothing');
  t.equal(journal(w)!.pid, child.pid, 'and left the journal alone');

  process.kill(child.pid!, 'SIGTERM');
  t.strictSame(await child.exited(), { code: 0, signal: null }, 'SIGTERM → restore → exit 0');
  t.equal((await snapshotRouting(w.ns)).text, w.before.text, 'routing identical to before, byte for byte');
  t.equal(journal(w), null, 'journal removed');
});

t.test('SIGINT restores and exits 0', async (t) => {
  const w = await world(t);
  const { child } = await up(t, w);
  t.not((await snapshotRouting(w.ns)).text, w.before.text);
  process.kill(child.pid!, 'SIGINT');
  t.strictSame(await child.exited(), { code: 0, signal: null }, 'SIGINT → restore → exit 0');
  t.equal((await snapshotRouting(w.ns)).text, w.before.text);
});

t.test('kill -9, then restore from a second process: refused elsewhere, exact, and idempotent', async (t) => {
  const w = await world(t);
  const { child } = await up(t, w, ['--exclude', '10.0.0.0/8']);
  process.kill(child.pid!, 'SIGKILL');
  t.strictSame(await child.exited(), { code: null, signal: 'SIGKILL' });
  t.equal((await routeGet(w.ns, '203.0.113.5')).dev, 'tun0', "the dead gateway's routing is still in place");
  t.equal(journal(w)!.pid, child.pid, 'and journaled');

  const elsewhere = await cli(w.peer, ['down', '--state-dir', w.dir]);
  t.equal(elsewhere.code, 1, 'restore from another namespace exits 1');
  t.match(elsewhere.stderr, `was written in network namespace "${w.ns}" inode`);
  t.match(elsewhere.stderr, `ip netns exec ${w.ns} tunsteer down`);
  t.ok(journal(w), 'journal kept');
  t.equal((await routeGet(w.ns, '203.0.113.5')).dev, 'tun0', 'nothing undone');

  const down = await cli(w.ns, ['down', '--state-dir', w.dir]);
  t.equal(down.code, 0, `down exits 0 (${down.stderr})`);
  t.strictSame(JSON.parse(down.stdout), { found: true, undone: 7, alreadyGone: 0, pid: child.pid });
  t.equal((await snapshotRouting(w.ns)).text, w.before.text, 'identical to before, byte for byte');
  t.equal(journal(w), null);

  const again = await cli(w.ns, ['down', '--state-dir', w.dir]);
  t.equal(again.code, 0, 'second down exits 0');
  t.strictSame(JSON.parse(again.stdout), { found: false, undone: 0, alreadyGone: 0 });
  t.equal((await snapshotRouting(w.ns)).text, w.before.text, 'and changed nothing');
});

t.test('kill -9, TUN gone, restore: "already gone" is fine', async (t) => {
  const w = await world(t);
  const { child } = await up(t, w);
  process.kill(child.pid!, 'SIGKILL');
  await child.exited();
  await nsExec(w.ns, ['ip', 'tuntap', 'del', 'tun0', 'mode', 'tun']); // its table-2022 route goes with it
  const down = await cli(w.ns, ['down', '--state-dir', w.dir]);
  t.equal(down.code, 0, down.stderr);
  t.strictSame(JSON.parse(down.stdout), { found: true, undone: 5, alreadyGone: 1, pid: child.pid });
  const after = await snapshotRouting(w.ns);
  t.equal(after.rule4, w.before.rule4, 'rules back exactly');
  t.notMatch(after.route4, 'table 2022');
});

t.test("a new gateway after kill -9 undoes the dead one's routing first", async (t) => {
  const w = await world(t);
  const first = await up(t, w, ['--exclude', '10.0.0.0/8']);
  process.kill(first.child.pid!, 'SIGKILL');
  await first.child.exited();
  const second = await up(t, w); // no exclude this time
  t.match(second.child.stderrText(), `undoing what dead tunsteer pid ${first.child.pid} left in place`);
  t.equal((await routeGet(w.ns, '10.1.2.3')).dev, 'tun0', 'the old exclude is gone');
  t.equal(journal(w)!.pid, second.child.pid);
  t.notMatch((await nsExec(w.ns, ['ip', 'rule', 'show'])).stdout, '10.0.0.0/8');
  process.kill(second.child.pid!, 'SIGTERM');
  t.equal((await second.child.exited()).code, 0);
  t.equal((await snapshotRouting(w.ns)).text, w.before.text);
});

t.test("real sockets: the gateway's own (bound to the uplink) go out direct; inbound to the uplink address is answered", async (t) => {
  const w = await world(t);
  await nsExec(w.peer, ['ip', 'addr', 'add', '203.0.113.5/32', 'dev', 'lo']);
  const server = spawnInNs(t, w.peer, [
    process.execPath,
    '-e',
    `require('net').createServer((s) => s.end('from-peer ' + s.remoteAddress)).listen(7001, '203.0.113.5', () => console.log('listening'))`,
  ]);
  await server.waitForLine((l) => l === 'listening');
  const inbound = spawnInNs(t, w.ns, [
    process.execPath,
    '-e',
    `require('net').createServer((s) => s.end('from-gw ' + s.remoteAddress)).listen(7002, '0.0.0.0', () => console.log('listening'))`,
  ]);
  await inbound.waitForLine((l) => l === 'listening');
  const { child } = await up(t, w);

  const dial = (ns: string, host: string, port: number, local?: string) =>
    nsExec(
      ns,
      [
        process.execPath,
        '-e',
        `const s = require('net').connect({ host: '${host}', port: ${port}${local ? `, localAddress: '${local}'` : ''} });
         let d = ''; s.on('data', (b) => (d += b)); s.on('end', () => { console.log(d); process.exit(0); });
         s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });
         setTimeout(() => { console.log('timeout'); process.exit(2); }, 1500);`,
      ],
      { allowFail: true },
    );

  const own = await dial(w.ns, '203.0.113.5', 7001, UPLINK_SRC);
  t.equal(own.stdout.trim(), `from-peer ${UPLINK_SRC}`, 'upstream socket bound to the uplink address reaches the internet');
  const plain = await dial(w.ns, '203.0.113.5', 7001);
  t.equal(plain.stdout.trim(), 'timeout', 'an ordinary socket is steered into the TUN (nobody reads this stand-in)');
  const back = await dial(w.peer, UPLINK_SRC, 7002, '203.0.113.5');
  t.equal(back.stdout.trim(), 'from-gw 203.0.113.5', 'a connection from the internet to the uplink address gets its answer');

  process.kill(child.pid!, 'SIGTERM');
  t.equal((await child.exited()).code, 0);
  t.equal((await snapshotRouting(w.ns)).text, w.before.text);
});

const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'import fcntl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

// Opens the TUN, takes the UDP datagram a plain socket sent, writes the reply back in.
const TUN_ECHO = String.raw`
import os, fcntl, struct, socket, select, sys, time
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', b'tun0', 0x0001 | 0x1000))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
s.connect(('203.0.113.5', 9999))
# Attaching turns the carrier on, but the kernel swaps in the device's queue a moment later
# (linkwatch): a datagram sent before that is dropped, so send again until one arrives.
deadline = time.monotonic() + 3
s.send(b'ping')
while True:
    if time.monotonic() > deadline: print('nothing on the tun'); sys.exit(2)
    if not select.select([fd], [], [], 0.3)[0]:
        s.send(b'ping'); continue
    p = os.read(fd, 65535)
    if p[0] >> 4 == 4 and p[9] == 17: break
ihl = (p[0] & 15) * 4; sp, dp = struct.unpack('!HH', p[ihl:ihl + 4])
udp = struct.pack('!HHHH', dp, sp, 13, 0) + b'reply'
h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, p[16:20], p[12:16])
c = sum(struct.unpack('!10H', h)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
os.write(fd, h[:10] + struct.pack('!H', ~c & 0xffff) + h[12:] + udp)
try: print('got ' + s.recv(100).decode() + ' from ' + s.getsockname()[0])
except socket.timeout: print('reply dropped'); sys.exit(1)
`;

t.test('replies the gateway writes into the TUN pass strict rp_filter (no sysctl needed)', { skip: hasPython ? false : 'needs python3 to open the TUN' }, async (t) => {
  const w = await world(t);
  // Inside the test's own namespace only.
  await nsExec(w.ns, ['sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.conf.tun0.rp_filter=1']);
  const { child } = await up(t, w);
  const r = await nsExec(w.ns, ['python3', '-c', TUN_ECHO], { allowFail: true });
  t.equal(r.stdout.trim(), 'got reply from 198.18.0.1', `strict rp_filter: reply delivered (${r.stderr})`);
  process.kill(child.pid!, 'SIGTERM');
  t.equal((await child.exited()).code, 0);
  t.equal((await snapshotRouting(w.ns)).text, w.before.text);
});

t.test('--rp-filter is journaled with its old value and put back', async (t) => {
  const w = await world(t);
  await nsExec(w.ns, ['sysctl', '-q', '-w', 'net.ipv4.conf.tun0.rp_filter=1']);
  const { child } = await up(t, w, ['--rp-filter', '2']);
  t.equal((await nsExec(w.ns, ['sysctl', '-n', 'net.ipv4.conf.tun0.rp_filter'])).stdout.trim(), '2');
  t.match(journal(w)!.steps[0], { kind: 'sysctl', key: 'net.ipv4.conf.tun0.rp_filter', value: '2', old: '1' });
  process.kill(child.pid!, 'SIGKILL');
  await child.exited();
  const down = await cli(w.ns, ['down', '--state-dir', w.dir]);
  t.equal(down.code, 0, down.stderr);
  t.equal((await nsExec(w.ns, ['sysctl', '-n', 'net.ipv4.conf.tun0.rp_filter'])).stdout.trim(), '1', 'old value back');
  t.equal((await snapshotRouting(w.ns)).text, w.before.text);
});

t.test('dry run changes nothing; no default route is a clear error', async (t) => {
  const w = await world(t);
  const plan = await cli(w.ns, ['plan', '--tun', 'tun0', '--exclude', '10.0.0.0/8']);
  t.equal(plan.code, 0, plan.stderr);
  t.equal(
    plan.stdout
      .split('\n')
      .filter((l) => l.startsWith('ip '))
      .join('\n'),
    [
      'ip -4 route add default dev tun0 table 2022',
      `ip -4 rule add from ${UPLINK_SRC} lookup main priority 9000`,
      `ip -4 rule add from ${UPLINK_SRC} unreachable priority 9001`,
      `ip -4 rule add to ${GW}/32 lookup main priority 9002`,
      'ip -4 rule add to 10.0.0.0/8 lookup main priority 9003',
      'ip -4 rule add lookup main suppress_prefixlength 0 priority 9004',
      'ip -4 rule add lookup 2022 priority 9005',
    ].join('\n'),
  );
  t.match(plan.stdout, `# uplink ${w.aIf} via ${GW}, gateway sockets bind ${UPLINK_SRC}`);
  t.equal((await snapshotRouting(w.ns)).text, w.before.text, 'dry run changed nothing');

  const bare = await world(t, { defaultRoute: false });
  const r = await cli(bare.ns, ['up', '--tun', 'tun0', '--state-dir', bare.dir]);
  t.equal(r.code, 1);
  t.match(r.stderr, 'no IPv4 default route in the main table');
  t.equal((await snapshotRouting(bare.ns)).text, bare.before.text);
  t.notOk(existsSync(join(bare.dir, 'routes.json')), 'no journal left');
});

t.test('rules already at our priorities: refused before any change', async (t) => {
  const w = await world(t);
  await nsExec(w.ns, ['ip', 'rule', 'add', 'to', '192.0.2.99', 'lookup', 'main', 'priority', '9003']);
  const before = await snapshotRouting(w.ns);
  const r = await cli(w.ns, ['up', '--tun', 'tun0', '--state-dir', w.dir]);
  t.equal(r.code, 1);
  t.match(r.stderr, 'routing state is in the way: policy rule priority 9003 is taken');
  t.equal((await snapshotRouting(w.ns)).text, before.text);
  t.notOk(existsSync(join(w.dir, 'routes.json')), 'lock released');
});
