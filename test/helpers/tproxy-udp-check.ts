// The addon's TPROXY UDP calls against the kernel, run inside a test namespace
// (lo up, nothing else), as root (it drops root itself):
//   ip netns exec NS node --import tsx test/helpers/tproxy-udp-check.ts
// Makes the transparent and reply sockets as root, drops to nobody, then
// checks that a datagram sent to the transparent socket is read with its
// client and destination, and that replies go out FROM an address that is not
// this host's, IPv4 and IPv6, and so does ICMP port unreachable (a connected
// client fails with ECONNREFUSED); and that bad arguments and failures come back
// as errors with a code, never a crash. Prints one JSON line {checks}; each
// value true when the check held.
import dgram from 'node:dgram';
import { closeSync, openSync, writeSync } from 'node:fs';
import { loadTunAddon } from '../../src/tun/native-addon.js';

setTimeout(() => done(), 20_000).unref();
const a = loadTunAddon();
const checks: Record<string, true | string> = {};
const check = (name: string, ok: boolean, detail: unknown) => {
  checks[name] = ok ? true : JSON.stringify(detail);
};
function expectThrow(name: string, fn: () => unknown, code: string): void {
  try {
    fn();
    checks[name] = 'did not throw';
  } catch (e) {
    const c = (e as NodeJS.ErrnoException).code;
    checks[name] = c === code ? true : `code ${c}: ${(e as Error).message}`;
  }
}
function done(): never {
  writeSync(1, JSON.stringify({ checks }) + '\n');
  // a preloaded tool's exit hook (tap's) cannot write its files as nobody and
  // throws; it runs once, so the second exit goes through
  try {
    process.exit(0);
  } finally {
    (process as unknown as { reallyExit(code: number): never }).reallyExit(0);
  }
}

const PORT = 15999;
const listen4 = a.transparentUdp('127.0.0.1', PORT, 4);
const listen6 = a.transparentUdp('::1', PORT, 6);
const reply4 = a.udpReplySocket(4);
const reply6 = a.udpReplySocket(6);
const icmp4 = a.icmpReplySocket(4);
const icmp6 = a.icmpReplySocket(6);

expectThrow('family 5 refused', () => a.transparentUdp('127.0.0.1', PORT, 5 as 4), 'ERR_OUT_OF_RANGE');
expectThrow('address of the wrong family refused', () => a.transparentUdp('::1', PORT, 4), 'EINVAL');
expectThrow('port out of range refused', () => a.udpSendFrom(reply4, Buffer.alloc(1), '192.0.2.1', 70000, '127.0.0.1', 1), 'ERR_OUT_OF_RANGE');
const devNull = openSync('/dev/null', 'r');
expectThrow('udpRecv on a file: ENOTSOCK', () => a.udpRecv(devNull, Buffer.alloc(16)), 'ENOTSOCK');
expectThrow('udpSendFrom on a file: ENOTSOCK', () => a.udpSendFrom(devNull, Buffer.alloc(1), '192.0.2.1', 1, '127.0.0.1', 1), 'ENOTSOCK');
closeSync(devNull);
expectThrow('udpSendFrom on a closed fd: EBADF', () => a.udpSendFrom(999_999, Buffer.alloc(1), '192.0.2.1', 1, '127.0.0.1', 1), 'EBADF');
expectThrow('watchReadable without a function', () => a.watchReadable(listen4, 'x' as never), 'ERR_INVALID_ARG_TYPE');
expectThrow('a 65528-byte datagram: EMSGSIZE', () => a.udpSendFrom(reply4, Buffer.alloc(65528), '192.0.2.1', 1, '127.0.0.1', 1), 'EMSGSIZE');
check('nothing waiting: null', a.udpRecv(listen4, Buffer.alloc(16)) === null, 'not null');

// no way back to root from here
process.setgroups!([65534]);
process.setgid!(65534);
process.setuid!(65534);
expectThrow('without privileges a new transparent socket is EPERM', () => a.transparentUdp('127.0.0.1', PORT + 1, 4), 'EPERM');
expectThrow('and so is a new reply socket', () => a.udpReplySocket(4), 'EPERM');
expectThrow('and a new ICMP socket', () => a.icmpReplySocket(6), 'EPERM');
expectThrow('udpPortUnreachable: a UDP length below 8 refused', () => a.udpPortUnreachable(icmp4, '127.0.0.1', 1, '192.0.2.1', 1, 7), 'ERR_OUT_OF_RANGE');

async function roundTrip(family: 4 | 6): Promise<void> {
  const [lo, fake, listen, reply] = family === 4 ? ['127.0.0.1', '192.0.2.77', listen4, reply4] : ['::1', '2001:db8::77', listen6, reply6];
  const client = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  await new Promise<void>((r) => client.bind(0, lo, () => r()));
  const cport = client.address().port;
  const buf = Buffer.alloc(2048);
  const got = await new Promise<ReturnType<typeof a.udpRecv>>((resolve) => {
    const w = a.watchReadable(listen, (_n, err) => {
      const d = err ? null : a.udpRecv(listen, buf);
      w.close();
      resolve(d);
    });
    w.resume();
    client.send(Buffer.from('hello'), PORT, lo);
  });
  check(
    `IPv${family}: read through the watcher: payload, client, destination`,
    got !== null &&
      got.length === 5 &&
      buf.subarray(0, 5).toString() === 'hello' &&
      got.src?.address === lo &&
      got.src.port === cport &&
      got.dst?.address === lo &&
      got.dst.port === PORT,
    got,
  );
  check(`IPv${family}: drained: null`, a.udpRecv(listen, buf) === null, 'not null');
  const answer = Buffer.alloc(3001, 0xa5); // odd length: the checksum's last byte
  const echoed = new Promise<{ msg: Buffer; from: dgram.RemoteInfo }>((resolve) => client.once('message', (msg, from) => resolve({ msg, from })));
  const n = a.udpSendFrom(reply, answer, fake, 53, lo, cport);
  check(`IPv${family}: udpSendFrom as nobody sent the payload`, n === answer.length, n);
  const r = await Promise.race([echoed, new Promise<null>((res) => setTimeout(() => res(null), 3000))]);
  check(
    `IPv${family}: the client got it FROM ${fake}:53 (not this host's address); the checksum held (the kernel drops bad ones)`,
    r !== null && r.from.address === fake && r.from.port === 53 && r.msg.equals(answer),
    r && { from: r.from },
  );
  client.close();
}

/** The test routes 192.0.2.0/24 and 2001:db8::/64 to lo, so a socket can connect there. */
async function refused(family: 4 | 6): Promise<void> {
  const [fake, icmp] = family === 4 ? ['192.0.2.78', icmp4] : ['2001:db8::78', icmp6];
  const client = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  await new Promise<void>((r) => client.connect(5353, fake, () => r()));
  const me = client.address();
  const err = new Promise<string>((resolve) => {
    client.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    setTimeout(() => resolve('no error within 3 s'), 3000);
  });
  const n = a.udpPortUnreachable(icmp, me.address, me.port, fake, 5353, 8 + 5);
  check(`IPv${family}: udpPortUnreachable as nobody sent it`, n > 0, n);
  const code = await err;
  check(`IPv${family}: the client's socket connected to ${fake}:5353 fails with ECONNREFUSED`, code === 'ECONNREFUSED', code);
  client.close();
}

await roundTrip(4);
await roundTrip(6);
await refused(4);
await refused(6);
done();
