// The TUN writer thread (src/tun/native/tx-thread.c) over real fds: a UNIX
// socketpair stands in for the TUN (a stream, so the order of the bytes is the
// order of the writes), a real TUN whose link is down for EIO.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadTunAddon, type NativeTxThread } from '../../../src/tun/native-addon.js';
import { TxRing } from '../../../src/tun/tx-ring.js';
import { createNetns } from '../../helpers/netns.js';

const linux = process.platform === 'linux';
const PACKET = 1000;

/** Writer threads of this process (named tun-tx by tx-thread.c). */
function writerThreads(): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === 'tun-tx') n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

/** A ring of `banks` x `capacity` slots whose writes a thread does to fd. */
function threadedRing(fd: number, banks: number, capacity: number, inlineBytes = 0): { ring: TxRing; thread: NativeTxThread } {
  let thread: NativeTxThread | null = null;
  const ring = new TxRing(PACKET, capacity, banks, (b, n) => (thread as NativeTxThread).submit(b, n));
  thread = loadTunAddon().createTxThread(
    fd,
    ring.banks.map((b) => b.slab),
    ring.banks.map((b) => b.lengths),
    ring.banks[0].slotSize,
    capacity,
    inlineBytes,
  );
  return { ring, thread };
}

/** Packets of PACKET bytes, each filled with its sequence number's low byte. */
function sendPackets(ring: TxRing, from: number, count: number, flushEvery: number): void {
  for (let i = 0; i < count; i++) {
    ring.txSlot().fill((from + i) & 0xff, 0, PACKET);
    ring.commitTx(PACKET);
    if ((i + 1) % flushEvery === 0) ring.flushTx();
  }
  ring.flushTx();
}

function checkSequence(t: Test, bytes: Buffer, count: number): void {
  t.equal(bytes.length, count * PACKET, 'every byte arrived');
  let bad = -1;
  for (let i = 0; i < count && bad < 0; i++) {
    const want = i & 0xff;
    if (bytes[i * PACKET] !== want || bytes[i * PACKET + PACKET - 1] !== want) bad = i;
  }
  t.equal(bad, -1, 'packets in the order they were committed, whole');
}

/** A child that waits `delay` s, then copies what it reads from fd into a file; resolves with the file's bytes. */
function slowReader(fd: number, delay: number): { done: Promise<Buffer>; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'txthread-'));
  const out = join(dir, 'out');
  const child = spawn('sh', ['-c', `sleep ${delay}; exec cat > ${out}`], { stdio: [fd, 'ignore', 'inherit'] });
  const done = new Promise<Buffer>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', () => resolve(readFileSync(out)));
  });
  return { done, dir };
}

t.test('order and content survive the thread; a full ring stalls instead of dropping', { skip: linux ? false : 'Linux only' }, async (t) => {
  const [a, b] = loadTunAddon().socketPair();
  const reader = slowReader(b, 0.3); // the socket buffer fills, the writer blocks, the ring fills
  t.teardown(() => rmSync(reader.dir, { recursive: true, force: true }));
  closeSync(b);
  const { ring, thread } = threadedRing(a, 3, 16);
  const count = 2000; // 2 MB, well past a socket buffer
  sendPackets(ring, 0, count, 7);
  const s = thread.stats();
  t.ok(s.stalls > 0, `submit waited for the writer (${s.stalls} times, ${s.stallMs.toFixed(1)} ms)`);
  thread.close(); // writes what is queued, then joins
  closeSync(a);
  const got = await reader.done;
  checkSequence(t, got, count);
  const end = thread.stats();
  t.equal(end.packets, count);
  t.equal(end.drops, 0);
  t.equal(end.bytes, count * PACKET);
  t.equal(ring.stats.packets, count);
});

t.test('close() with banks queued writes them, joins the thread, and a second close is harmless', { skip: linux ? false : 'Linux only' }, async (t) => {
  const before = writerThreads();
  const [a, b] = loadTunAddon().socketPair();
  const reader = slowReader(b, 0.2);
  t.teardown(() => rmSync(reader.dir, { recursive: true, force: true }));
  closeSync(b);
  const { ring, thread } = threadedRing(a, 4, 64);
  t.equal(writerThreads(), before + 1, 'one writer thread');
  sendPackets(ring, 0, 600, 64); // about 600 KB: more than the socket takes before the reader starts
  thread.close();
  t.equal(writerThreads(), before, 'the thread was joined');
  thread.close();
  t.throws(() => thread.submit(0, 1), { code: 'ERR_TUN_CLOSED' });
  closeSync(a);
  checkSequence(t, await reader.done, 600);
});

t.test('a small flush with nothing queued is written on the calling thread, in order with queued ones', { skip: linux ? false : 'Linux only' }, async (t) => {
  const [a, b] = loadTunAddon().socketPair();
  const reader = slowReader(b, 0);
  t.teardown(() => rmSync(reader.dir, { recursive: true, force: true }));
  closeSync(b);
  const { ring, thread } = threadedRing(a, 3, 8, 2 * PACKET);
  sendPackets(ring, 0, 1, 8); // 1 packet: inline
  t.equal(thread.stats().inline, 1, 'written without the thread');
  t.equal(thread.stats().wakes, 0, 'the thread slept through it');
  let seq = 1;
  for (let round = 0; round < 50; round++) {
    sendPackets(ring, seq, 8, 8); // 8 packets: past inlineBytes, queued
    seq += 8;
    sendPackets(ring, seq, 2, 8); // inline only if the thread is done with the 8
    seq += 2;
  }
  thread.close();
  closeSync(a);
  checkSequence(t, await reader.done, seq);
  const s = thread.stats();
  t.equal(s.packets, seq);
  t.equal(s.drops, 0);
  t.ok(s.inline >= 1 && s.inline <= 51, `inline ${s.inline}, queued ${s.submits - s.inline}`);
});

t.test('a write that makes the fd unusable is thrown by the next submit, its packets counted as drops', { skip: linux ? false : 'Linux only' }, async (t) => {
  const [a, b] = loadTunAddon().socketPair();
  closeSync(b); // the peer is gone: write() fails with EPIPE (SIGPIPE is ignored by Node, blocked in the thread)
  const { ring, thread } = threadedRing(a, 2, 8);
  t.teardown(() => {
    thread.close();
    closeSync(a);
  });
  sendPackets(ring, 0, 3, 8); // bank 0, accepted: the write fails on the thread
  const deadline = Date.now() + 5000;
  while (thread.stats().drops < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const s = thread.stats();
  t.equal(s.packets, 0);
  t.equal(s.drops, 3, "the failed bank's packets are drops");
  ring.txSlot()[0] = 1;
  ring.commitTx(10);
  t.throws(() => ring.flushTx(), { code: 'EPIPE', syscall: 'write' }, 'the next flush throws, as writeBatch would');
  t.equal(ring.stats.drops, 1, 'that flush counts its packet as a drop');
});

t.test('a TUN whose link is down: EIO drops the bank, counted, nothing thrown', { skip: linux && process.getuid?.() === 0 ? false : 'needs Linux and root' }, async (t) => {
  const ns = await createNetns(t, 'tsTx-');
  const addon = loadTunAddon();
  const { fd } = addon.open('txt0', 0, `/run/netns/${ns}`);
  const { ring, thread } = threadedRing(fd, 2, 8);
  t.teardown(() => {
    thread.close();
    closeSync(fd);
  });
  for (let i = 0; i < 3; i++) {
    const p = ring.txSlot();
    p.fill(0);
    p[0] = 0x45; // an IPv4 header's first byte: the kernel looks no further before EIO
    ring.commitTx(40);
  }
  t.equal(ring.flushTx(), 3, 'accepted by the ring');
  const deadline = Date.now() + 5000;
  while (thread.stats().drops < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const s = thread.stats();
  t.equal(s.drops, 3, 'EIO dropped them');
  t.equal(s.packets, 0);
  t.equal(s.dropBytes, 120);
  t.doesNotThrow(() => {
    ring.txSlot()[0] = 0x45;
    ring.commitTx(40);
    ring.flushTx();
  }, 'EIO is not fatal: the link may come up');
});

t.test('a worker thread that exits without close() joins its writer thread', { skip: linux ? false : 'Linux only' }, async (t) => {
  const before = writerThreads();
  const [a, b] = loadTunAddon().socketPair();
  t.teardown(() => {
    closeSync(a);
    closeSync(b);
  });
  const addonPath = new URL('../../../build/Release/tunsteer_tun.node', import.meta.url).pathname;
  const w = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const slab = Buffer.alloc(64 * 8), lengths = new Uint32Array(8);
     const th = require(workerData.addonPath).createTxThread(workerData.fd, [slab, Buffer.alloc(64 * 8)], [lengths, new Uint32Array(8)], 64, 8);
     slab.fill(7, 0, 10); lengths[0] = 10; th.submit(0, 1);
     globalThis.keep = th;
     parentPort.postMessage('running');
     setInterval(() => {}, 1000);`,
    { eval: true, workerData: { fd: a, addonPath } },
  );
  await new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
  t.equal(writerThreads(), before + 1, 'the worker has a writer thread');
  await w.terminate();
  t.equal(writerThreads(), before, 'joined when the worker went away');
});

t.test('bad arguments are TypeErrors and RangeErrors, not crashes', { skip: linux ? false : 'Linux only' }, async (t) => {
  const addon = loadTunAddon();
  const slab = Buffer.alloc(64 * 4);
  const lengths = new Uint32Array(4);
  t.throws(() => addon.createTxThread(0, [slab], [lengths, lengths], 64, 4), TypeError);
  t.throws(() => addon.createTxThread(0, [], [], 64, 4), TypeError);
  t.throws(() => addon.createTxThread(0, [slab], [lengths], 64, 5), RangeError);
  t.throws(() => addon.createTxThread(0, [lengths as unknown as Buffer], [lengths], 64, 4), TypeError);
  const [a, b] = addon.socketPair();
  const th = addon.createTxThread(a, [slab, Buffer.alloc(64 * 4)], [lengths, new Uint32Array(4)], 64, 4);
  t.teardown(() => {
    th.close();
    closeSync(a);
    closeSync(b);
  });
  t.throws(() => th.submit(1, 1), RangeError, 'out of ring order');
  t.throws(() => th.submit(0, 5), RangeError, 'more than the capacity');
  t.throws(() => th.submit(2, 1), RangeError, 'no such bank');
});
