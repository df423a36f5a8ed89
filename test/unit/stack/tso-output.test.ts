// The stack over a TUN with offloads at MTU 1500: it writes TCP segments over
// the MTU with a virtio-net header (NEEDS_CSUM, gso TCPV4, gso_size = the
// MSS both sides allow), which the kernel splits (emulated here by
// test/helpers/gso-split.ts); every piece on the wire fits the MTU with a
// correct checksum, and a transfer both ways is byte-exact, also when pieces
// are lost (a resent hole is one MSS, a timeout goes back in whole pieces).
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { StackNet } from './stack-harness.js';
import { Ipv4View } from '../../../src/stack/wire/ipv4-view.js';
import { tcpChecksumOk } from '../../../src/stack/wire/tcp-view.js';
import { checksum } from '../../../src/stack/wire/checksum.js';
import type { TunOffload } from '../../../src/tun/tun-device.js';
import { bytes as data } from './tcp/harness.js';

const OFFLOAD: TunOffload = { vnetHdrLen: 10, csum: true, tso4: true, tso6: true, uso: false };
const CSUM_ONLY: TunOffload = { ...OFFLOAD, tso4: false, tso6: false };
const settle = () => new Promise((r) => setImmediate(r));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Drops about `rate` of the pieces, the same ones each run. */
function lossy(rate: number, seed = 7): (p: Buffer) => boolean {
  let x = seed;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296 >= rate;
  };
}

async function transfer(t: Test, offload: TunOffload | undefined, loss: number) {
  let app: Duplex | null = null;
  const fromClient: Buffer[] = [];
  const net = new StackNet(
    {},
    (c) => {
      app = c.accept();
      app.on('data', (d: Buffer) => fromClient.push(d));
    },
    1500,
    offload,
  );
  const ip = new Ipv4View();
  let bad = 0;
  let over = 0;
  let lost = 0;
  const drop = lossy(loss);
  net.keep = (p) => {
    if (p.length > 1500) over++;
    if (ip.reset(p, 0, p.length) !== 0 || checksum(p, 0, 20) !== 0 || !tcpChecksumOk(p, ip.src, ip.dst, ip.payloadOffset, ip.payloadLength)) bad++;
    const kept = drop(p);
    if (!kept) lost++;
    return kept;
  };
  const client = net.client(40000, 1000);
  const down = data(800_000, 1);
  const up = data(300_000, 2);
  let upOff = 0;
  let consumed = 0;
  for (let i = 0; i < 3000 && !app; i++) {
    await settle();
    net.step(10);
  }
  t.ok(app, 'connected');
  app!.write(down);
  app!.end();
  const got = () => client.got.reduce((n, b) => n + b.length, 0);
  for (let i = 0; i < 20_000 && (got() < down.length || fromClient.reduce((n, b) => n + b.length, 0) < up.length); i++) {
    if (upOff < up.length) upOff += client.conn.write(up.subarray(upOff, upOff + 65536), net.now);
    await settle();
    net.step(10);
    const n = got();
    if (n > consumed) client.conn.consumed(n - consumed, net.now);
    consumed = n;
  }
  t.equal(sha(Buffer.concat(client.got)), sha(down), 'server → client byte-exact');
  t.equal(sha(Buffer.concat(fromClient)), sha(up), 'client → server byte-exact');
  t.equal(bad, 0, 'every packet on the wire has correct checksums');
  t.equal(over, 0, 'every packet on the wire fits the MTU');
  return { net, lost };
}

for (const loss of [0, 0.03]) {
  t.test(`TSO at MTU 1500, ${loss * 100} % of the pieces lost: byte-exact both ways`, async (t) => {
    const { net, lost } = await transfer(t, OFFLOAD, loss);
    const c = net.stack.counters;
    t.ok(net.largestWrite > 1500 * 4, `segments over the MTU were written (largest ${net.largestWrite})`);
    // 800 KB is 553 pieces of 1448: most of them went in segments of many
    t.ok(c.segmentsOffloaded >= 10, `counted (${c.segmentsOffloaded} segments, ${c.packetsOut} writes for ${net.packetsToClients} packets on the wire)`);
    if (loss > 0) t.ok(lost > 20, `pieces were lost and resent (${lost})`);
  });
}

t.test('checksum offload alone: partial checksums, nothing over the MTU', async (t) => {
  const { net } = await transfer(t, CSUM_ONLY, 0.01);
  t.ok(net.largestWrite <= 1500, `largest write ${net.largestWrite}`);
  t.equal(net.stack.counters.segmentsOffloaded, 0);
});

t.test('no offloads: as before', async (t) => {
  const { net } = await transfer(t, undefined, 0.01);
  t.ok(net.largestWrite <= 1500, `largest write ${net.largestWrite}`);
  t.equal(net.stack.counters.segmentsOffloaded, 0);
});
