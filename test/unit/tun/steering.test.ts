// The TUN steering program (src/tun/native/steering.c): the kernel's verifier
// accepts it, and attaching it reports the failing step. Whether it steers
// fragments right is test/e2e/tun-multiqueue.test.ts's (a real multi-queue TUN).
import t from 'tap';
import { openSync, closeSync, readdirSync } from 'node:fs';
import { loadTunAddon } from '../../../src/tun/native-addon.js';

const root = process.platform === 'linux' && process.getuid?.() === 0;

t.test('the verifier accepts the program', { skip: root ? false : 'needs Linux and root (CAP_BPF)' }, async (t) => {
  t.equal(loadTunAddon().tunSteeringLoads(), true);
});

t.test('attaching to an fd that is no TUN throws the ioctl error and leaks no fd', { skip: root ? false : 'needs Linux and root (CAP_BPF)' }, async (t) => {
  const addon = loadTunAddon();
  const fd = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(fd));
  const before = readdirSync('/proc/self/fd').length;
  t.throws(() => addon.tunSteeringAttach(fd), { code: 'ENOTTY', message: /TUNSETSTEERINGEBPF/ });
  t.equal(readdirSync('/proc/self/fd').length, before, 'the program fd is closed');
});

t.test('a bad fd argument is a TypeError, not a crash', { skip: process.platform === 'linux' ? false : 'Linux only' }, async (t) => {
  t.throws(() => (loadTunAddon().tunSteeringAttach as (fd: unknown) => void)('x'), TypeError);
});
