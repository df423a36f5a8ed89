// Opens a TUN in the network namespace it runs in and reflects IPv4 UDP datagrams
// addressed to port --port (default 9999): addresses and ports swapped, checksums
// recomputed from scratch (--recompute, default) or left as they are (a swap keeps
// both one's-complement sums valid). Run it with
//   ip netns exec NS node --import tsx test/helpers/tun-echo-worker.ts --backend native --name tun0 --mtu 1500 --addr 198.18.0.1/30
// stdout: one JSON line {ready, name, mtu} once the device is up; after that one
// JSON line of counters per "stats" line on stdin. Exits when stdin ends, on
// SIGTERM, or after --max-seconds (default 120).
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { openTun, type TunBackend } from '../../src/tun/open-tun.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'native' },
    name: { type: 'string', default: '' },
    mtu: { type: 'string', default: '1500' },
    addr: { type: 'string', default: '198.18.0.1/30' },
    port: { type: 'string', default: '9999' },
    batch: { type: 'string', default: '64' },
    txqueuelen: { type: 'string', default: '' },
    recompute: { type: 'boolean', default: true },
    'no-recompute': { type: 'boolean', default: false },
    'max-seconds': { type: 'string', default: '120' },
  },
});
const port = Number(values.port);
const recompute = values.recompute && !values['no-recompute'];

function sum16(b: Buffer, off: number, len: number, acc: number): number {
  let i = off;
  const end = off + len - 1;
  for (; i < end; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (i === end) acc += b[i] << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

function fixChecksums(p: Buffer, ihl: number, total: number): void {
  p.writeUInt16BE(0, 10);
  p.writeUInt16BE(~fold(sum16(p, 0, ihl, 0)) & 0xffff, 10);
  const udpLen = total - ihl;
  p.writeUInt16BE(0, ihl + 6);
  let acc = sum16(p, 12, 8, 0) + 17 + udpLen; // pseudo-header: src, dst, proto, length
  acc = sum16(p, ihl, udpLen, acc);
  const c = ~fold(acc) & 0xffff;
  p.writeUInt16BE(c === 0 ? 0xffff : c, ihl + 6);
}

const counters = { rxPackets: 0, rxBytes: 0, echoed: 0, ignored: 0, batches: 0 };
const dev = await openTun({
  backend: values.backend as TunBackend,
  name: values.name || undefined,
  mtu: Number(values.mtu),
  addresses: [values.addr],
  batch: Number(values.batch),
  txQueueLen: values.txqueuelen ? Number(values.txqueuelen) : undefined,
  onError: (err) => process.stderr.write(`tun error: ${err.message}\n`),
});

dev.start((batch) => {
  counters.batches++;
  for (let i = 0; i < batch.count; i++) {
    const s = batch.slots[i];
    const len = batch.lengths[i];
    counters.rxPackets++;
    counters.rxBytes += len;
    const ihl = (s[0] & 0x0f) * 4;
    if (len < 28 || s[0] >> 4 !== 4 || s[9] !== 17 || ihl < 20 || s.readUInt16BE(ihl + 2) !== port) {
      counters.ignored++;
      continue;
    }
    const total = Math.min(s.readUInt16BE(2), len);
    const t = dev.txSlot();
    s.copy(t, 0, 0, total);
    // swap addresses (12..15 <-> 16..19) and ports
    s.copy(t, 12, 16, 20);
    s.copy(t, 16, 12, 16);
    s.copy(t, ihl, ihl + 2, ihl + 4);
    s.copy(t, ihl + 2, ihl, ihl + 2);
    t[8] = 64; // TTL
    if (recompute) fixChecksums(t, ihl, total);
    else {
      // TTL changed: patch the header checksum incrementally (RFC 1624, eqn. 3)
      const old = (s[8] << 8) | s[9];
      const neu = (t[8] << 8) | t[9];
      const hc = ~fold((~s.readUInt16BE(10) & 0xffff) + (~old & 0xffff) + neu) & 0xffff;
      t.writeUInt16BE(hc, 10);
    }
    dev.commitTx(total);
    counters.echoed++;
  }
  dev.flushTx();
});

const stats = () => {
  const cpu = process.cpuUsage();
  return { ...counters, cpuUs: cpu.user + cpu.system, at: performance.now(), device: dev.stats() };
};
process.stdout.write(JSON.stringify({ ready: true, name: dev.name, mtu: dev.mtu, backend: values.backend }) + '\n');

let closing = false;
function finish(code: number): void {
  if (closing) return;
  closing = true;
  try {
    dev.close();
  } finally {
    process.exit(code);
  }
}
let acc = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  acc += d;
  let nl: number;
  while ((nl = acc.indexOf('\n')) >= 0) {
    const line = acc.slice(0, nl).trim();
    acc = acc.slice(nl + 1);
    if (line === 'stats') process.stdout.write(JSON.stringify(stats()) + '\n');
    else if (line === 'exit') finish(0);
  }
});
process.stdin.on('end', () => finish(0));
process.on('SIGTERM', () => finish(0));
process.on('SIGINT', () => finish(0));
setTimeout(() => finish(4), Number(values['max-seconds']) * 1000).unref();
