// Error paths of the tunsteer_tun addon, run inside a test namespace:
//   ip netns exec NS node --import tsx test/helpers/tun-addon-check.ts
// Prints one JSON line {checks: {name: true|string}}; each value true when the check held.
import { closeSync } from 'node:fs';
import { loadTunAddon } from '../../src/tun/native-addon.js';
import { openLinuxTun } from '../../src/tun/linux-tun.js';

const a = loadTunAddon();
const checks: Record<string, true | string> = {};
function expectThrow(name: string, fn: () => unknown, code: string): void {
  try {
    fn();
    checks[name] = 'did not throw';
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    checks[name] = c === code ? true : `code ${c}: ${(e as Error).message}`;
  }
}

const first = a.open('tsTchk0', 0);
checks.open = first.name === 'tsTchk0' && first.fd > 2 ? true : JSON.stringify(first);
expectThrow('busy name', () => a.open('tsTchk0', 0), 'EBUSY');
expectThrow('long name', () => a.open('x'.repeat(16), 0), 'ERR_OUT_OF_RANGE');
expectThrow('bad flags', () => a.open('tsTchk1', 0x20), 'ERR_OUT_OF_RANGE');
expectThrow('slab type', () => a.writeBatch(first.fd, 'x' as unknown as Buffer, new Uint32Array(1), 1, 64), 'ERR_INVALID_ARG_TYPE');
expectThrow('slab size', () => a.writeBatch(first.fd, Buffer.alloc(64), new Uint32Array(2), 2, 64), 'ERR_OUT_OF_RANGE');
expectThrow('reader cb', () => a.createReader(first.fd, Buffer.alloc(64), new Uint32Array(1), 64, 1, null as never), 'ERR_INVALID_ARG_TYPE');
// a packet longer than its slot, and a zero length, are skipped, not written
const lens = new Uint32Array([0, 65]);
checks['skip bad lengths'] = a.writeBatch(first.fd, Buffer.alloc(128), lens, 2, 64) === 0 ? true : 'wrote';
// a garbage packet: the kernel takes or rejects it, the call must not throw
try {
  a.writeBatch(first.fd, Buffer.alloc(64, 0xff), new Uint32Array([40]), 1, 64);
  checks['garbage packet'] = true;
} catch (e) {
  checks['garbage packet'] = (e as Error).message;
}
closeSync(first.fd);
expectThrow('closed fd', () => a.writeBatch(first.fd, Buffer.alloc(64), new Uint32Array([20]), 1, 64), 'EBADF');

// A handler that throws reaches process 'uncaughtException' instead of aborting.
const dev = openLinuxTun({ name: 'tsTchk2', mtu: 1500, addresses: ['198.18.0.5/30'] });
const caught = new Promise<string>((resolve) => {
  process.once('uncaughtException', (e) => resolve(e.message));
  setTimeout(() => resolve('no exception seen'), 5000).unref();
});
dev.start(() => {
  throw new Error('handler boom');
});
// Make the kernel send something into the TUN: a datagram to the peer address.
const dgram = await import('node:dgram');
const s = dgram.createSocket('udp4');
s.send(Buffer.from('x'), 9, '198.18.0.6', () => s.close());
const msg = await caught;
checks['handler throw'] = msg === 'handler boom' ? true : msg;
dev.close();
dev.close();
checks['close twice'] = true;
console.log(JSON.stringify({ checks }));
process.exit(0);
