// The stack's own cost, in one process, no kernel: a client TcpConnection
// speaks real IPv4/TCP packets (our writer out, our parser in) to a Stack over
// an in-memory TUN, and a TcpStream on the stack's side reads (upload) or
// writes (download) N MB. No loss: this measures the fast path of input,
// the connection, the writers and the stream, i.e. what a refactor of the
// stack may slow down. CPU-bound and single-threaded: run it on a quiet machine.
// Besides wall-clock Gbit/s it reports Gbit per CPU-second of this process
// (process.cpuUsage), which other load on the machine disturbs far less.
//
//   npx tsc -p tsconfig.json && node dist/bench/stack-inprocess.js [--mb N] [--runs N] [--mtu N] [--dir up|down]
// Compiled, as the gateway runs: under tsx every imported binding is a getter
// call (its CommonJS interop), which costs the stack ~10 % more at MTU 1500 and
// more the more modules the hot path crosses, so tsx figures mislead.
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { Stack } from '../src/stack/stack.js';
import { MemoryTun } from '../src/tun/memory-tun.js';
import { TcpConnection } from '../src/stack/tcp/tcp-connection.js';
import { DEFAULT_TCP_OPTIONS, type OutSegment, type Segment, type TcpSink } from '../src/stack/contracts.js';
import { writeTcpSegment } from '../src/stack/wire/segment-writer.js';
import { Ipv4View } from '../src/stack/wire/ipv4-view.js';
import { TcpView } from '../src/stack/wire/tcp-view.js';
import { fillSegment, newSegment } from '../src/stack/wire/tcp-options.js';
import { median } from './bench-kit.js';

const { values } = parseArgs({ options: { mb: { type: 'string' }, runs: { type: 'string' }, mtu: { type: 'string' }, dir: { type: 'string' } } });
const MB = Number(values.mb ?? 256);
const RUNS = Number(values.runs ?? 5);
const MTUS = values.mtu ? [Number(values.mtu)] : [1500, 65520];
const CLIENT = ((198 << 24) | (18 << 16) | 1) >>> 0;
const SERVER = ((203 << 24) | (113 << 8) | 10) >>> 0;
const tick = () => new Promise((r) => setImmediate(r));

async function once(mtu: number, upload: boolean): Promise<{ wall: number; cpu: number }> {
  const total = MB * 1024 * 1024;
  const dev = new MemoryTun({ mtu, capture: false, txBatch: 256 });
  let stream: Duplex | null = null;
  // The stack's clock is the real one here, as in the data plane.
  const stack = new Stack(dev, (c) => (stream = c.accept() as Duplex), { clock: () => performance.now() });
  const slot = Buffer.alloc(mtu + 100);
  let got = 0;
  const sink: TcpSink = {
    sendSegment(s: OutSegment) {
      stack.input(slot, 0, writeTcpSegment(slot, CLIENT, SERVER, 40000, 80, s), performance.now());
    },
    onOpen() {},
    onData(_b, _o, l) {
      got += l;
      client.consumed(l, performance.now());
    },
    onPeerFin() {},
    onWritable() {},
    onClosed() {},
  };
  const ip = new Ipv4View();
  const tcp = new TcpView();
  const seg: Segment = newSegment();
  // Packets towards the client wait in a queue: delivering them from inside the stack's
  // flush would re-enter the client connection in the middle of its own send.
  let toClient: Buffer[] = [];
  dev.onTx((p) => void toClient.push(p));
  const deliver = () => {
    for (let guard = 0; toClient.length > 0 && guard < 10_000; guard++) {
      const batch = toClient;
      toClient = [];
      for (const p of batch) {
        if (ip.reset(p, 0, p.length) !== 0 || tcp.reset(p, ip.payloadOffset, ip.payloadLength) !== 0) continue;
        fillSegment(tcp, seg);
        client.receive(seg, performance.now());
      }
    }
  };
  const client = TcpConnection.connect(sink, { ...DEFAULT_TCP_OPTIONS, mss: mtu - 40, rcvBuf: 4 << 20, sndBuf: 4 << 20 }, 1234, performance.now());
  await tick();
  deliver();
  if (stream === null) throw new Error('no connection');
  const s = stream as Duplex;
  const chunk = Buffer.alloc(256 * 1024, 7);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  if (upload) {
    let fromClient = 0;
    s.on('data', (d: Buffer) => (fromClient += d.length));
    let sent = 0;
    while (fromClient < total) {
      while (sent < total) {
        const n = client.write(chunk.subarray(0, Math.min(chunk.length, total - sent)), performance.now());
        if (n === 0) break;
        sent += n;
      }
      await tick();
      deliver();
      stack.tick(performance.now());
    }
  } else {
    let written = 0;
    const pump = () => {
      while (written < total) {
        written += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    pump();
    while (got < total) {
      await tick();
      deliver();
      stack.tick(performance.now());
    }
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  s.destroy();
  stack.abortAll();
  const gbit = (total * 8) / 1e9;
  return { wall: gbit / (ms / 1000), cpu: gbit / ((cpu.user + cpu.system) / 1e6) };
}

async function main() {
  console.log(`stack in-process, ${MB} MB per run, median of ${RUNS}: Gbit/s wall clock, and Gbit per CPU-second`);
  const f = (xs: number[]) => median(xs).toFixed(2);
  for (const mtu of MTUS) {
    const up: { wall: number; cpu: number }[] = [];
    const down: { wall: number; cpu: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      if (values.dir !== 'down') up.push(await once(mtu, true));
      if (values.dir !== 'up') down.push(await once(mtu, false));
    }
    if (up.length === 0) up.push({ wall: NaN, cpu: NaN });
    if (down.length === 0) down.push({ wall: NaN, cpu: NaN });
    const w = (r: typeof up) => r.map((x) => x.wall);
    const c = (r: typeof up) => r.map((x) => x.cpu);
    console.log(`mtu ${mtu}: upload ${f(w(up))} wall, ${f(c(up))} per CPU-s; download ${f(w(down))} wall, ${f(c(down))} per CPU-s`);
  }
}

void main();
