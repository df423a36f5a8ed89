// The TUN backends against the kernel: in a namespace of the test's own, a worker
// opens the TUN (198.18.0.1/30) and reflects UDP sent to 198.18.0.2:9999; a probe
// in the same namespace checks every reply byte for byte. MTU 1500 and 65520
// (a 65492-byte datagram is a 65520-byte packet), native and tuntap2 backends.
import t, { type Test } from 'tap';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const helper = (name: string) => fileURLToPath(new URL(`../helpers/${name}`, import.meta.url));
const NODE = [process.execPath, '--import', 'tsx'];

if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) {
  t.plan(0, 'needs root and /dev/net/tun');
}

function newNamespace(t: Test): string {
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
  return ns;
}

function inNs(ns: string, args: string[], timeout = 60_000): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...args], { cwd: root, timeout, encoding: 'utf8' });
}

/** Start the echo worker; resolves with its ready line. Killed (by PID) in teardown. */
function startWorker(t: Test, ns: string, args: string[]): Promise<{ child: ChildProcess; ready: Record<string, unknown> }> {
  // `ip netns exec` execs the command, so child.pid is the worker's own PID.
  const child = spawn('ip', ['netns', 'exec', ns, ...NODE, helper('tun-echo-worker.ts'), ...args, '--max-seconds', '120'], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`worker not ready in 30 s: ${err}`)), 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0 && timer) {
        clearTimeout(timer);
        try {
          resolve({ child, ready: JSON.parse(out.slice(0, nl)) });
        } catch (e) {
          reject(e);
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited ${code}: ${err}`));
    });
  });
}

function stopWorker(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, 10_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.stdin!.end();
  });
}

const cases = [
  { mtu: 1500, sizes: '1,64,512,1400,1472' },
  { mtu: 65520, sizes: '1,1472,9000,60000,65492' },
];

for (const backend of ['native', 'tuntap2'] as const) {
  for (const { mtu, sizes } of cases) {
    t.test(`${backend} backend, MTU ${mtu}: UDP echo through the TUN`, async (t) => {
      const ns = newNamespace(t);
      const name = `tsT${backend === 'native' ? 'n' : 't'}${mtu}`;
      const { child, ready } = await startWorker(t, ns, ['--backend', backend, '--name', name, '--mtu', String(mtu), '--addr', '198.18.0.1/30']);
      t.equal(ready.name, name, 'the device has the requested name');
      t.equal(ready.mtu, mtu);
      const link = JSON.parse(inNs(ns, ['ip', '-j', 'addr', 'show', 'dev', name]))[0];
      t.equal(link.mtu, mtu, 'kernel MTU');
      t.ok(link.flags.includes('UP'), 'link up');
      t.same(
        link.addr_info.filter((a: { family: string }) => a.family === 'inet').map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
        ['198.18.0.1/30'],
      );

      const probe = JSON.parse(inNs(ns, [...NODE, helper('tun-udp-probe.ts'), '198.18.0.2', '9999', sizes, '3']));
      t.equal(probe.mismatches, 0, 'every reply equals its datagram');
      t.equal(probe.received, sizes.split(',').length * 3, 'every datagram came back');
      t.ok(probe.ok, JSON.stringify(probe));

      child.stdin!.write('stats\n');
      const code = await stopWorker(child);
      t.equal(code, 0, 'worker exits cleanly');
      const links = inNs(ns, ['ip', '-o', 'link']);
      t.notMatch(links, name, 'closing the fd removed the TUN');
    });
  }
}

t.test('native addon: error paths throw with codes, a throwing handler reaches uncaughtException', async (t) => {
  const ns = newNamespace(t);
  const out = JSON.parse(inNs(ns, [...NODE, helper('tun-addon-check.ts')]));
  for (const [check, result] of Object.entries(out.checks)) t.equal(result, true, check);
  t.ok(Object.keys(out.checks).length >= 12);
});
