// Per-host mode must not rewrite pid 1's resolver file from another network
// namespace (ip netns exec NS without /etc/netns/NS/resolv.conf): checked on
// a /proc of our own making.
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedResolvConfProblem } from '../../../src/gateway/resolv-conf-owner.js';

const dir = mkdtempSync(join(tmpdir(), 'tunsteer-resolv-owner-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A /proc with self and 1 in the given namespaces, pid 1's root at `root`. */
function fakeProc(name: string, netSelf: string, netInit: string, root: string): string {
  const proc = join(dir, name);
  mkdirSync(join(proc, 'self/ns'), { recursive: true });
  mkdirSync(join(proc, '1/ns'), { recursive: true });
  symlinkSync(netSelf, join(proc, 'self/ns/net'));
  symlinkSync(netInit, join(proc, '1/ns/net'));
  symlinkSync(root, join(proc, '1/root'));
  return proc;
}

const root = join(dir, 'root');
mkdirSync(join(root, 'etc'), { recursive: true });
writeFileSync(join(root, 'etc/resolv.conf'), 'nameserver 192.0.2.53\n');
const own = join(dir, 'own-resolv.conf');
writeFileSync(own, 'nameserver 192.0.2.54\n');

t.test("another namespace than pid 1, and pid 1's very file: refused, saying how to fix it", async (t) => {
  const proc = fakeProc('p1', 'net:[4026531111]', 'net:[4026531840]', root);
  const why = sharedResolvConfProblem(join(root, 'etc/resolv.conf'), proc);
  t.match(why, /is the resolver file of pid 1's network namespace/);
  t.match(why, /\/etc\/netns\/NS\/resolv\.conf/);
  t.match(why, /--shared-resolv-conf/);
});

t.test('a file of its own (a bind mount, another file): allowed', async (t) => {
  const proc = fakeProc('p2', 'net:[4026531111]', 'net:[4026531840]', root);
  t.equal(sharedResolvConfProblem(own, proc), null);
  t.equal(sharedResolvConfProblem(join(dir, 'missing'), proc), null);
});

t.test("pid 1's own namespace (the machine's, a container's): its file is its own", async (t) => {
  const proc = fakeProc('p3', 'net:[4026531840]', 'net:[4026531840]', root);
  t.equal(sharedResolvConfProblem(join(root, 'etc/resolv.conf'), proc), null);
});

t.test("pid 1's resolv.conf as an absolute symlink is followed inside its root", async (t) => {
  const r2 = join(dir, 'root2');
  mkdirSync(join(r2, 'etc'), { recursive: true });
  mkdirSync(join(r2, 'run/resolve'), { recursive: true });
  writeFileSync(join(r2, 'run/resolve/stub-resolv.conf'), 'nameserver 127.0.0.53\n');
  symlinkSync('/run/resolve/stub-resolv.conf', join(r2, 'etc/resolv.conf'));
  const proc = fakeProc('p4', 'net:[4026531111]', 'net:[4026531840]', r2);
  t.match(sharedResolvConfProblem(join(r2, 'run/resolve/stub-resolv.conf'), proc), /resolver file of pid 1/);
  t.equal(sharedResolvConfProblem(own, proc), null);
});
