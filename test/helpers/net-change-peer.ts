// Peers for the tests of a network that changes under the gateway
// (test/e2e/follow-network.test.ts). Run in a namespace with
// `node --import tsx test/helpers/net-change-peer.ts MODE ...`; every client mode is
// bounded in time and prints JSON lines.
//
//   server HOST PORT                  "PACED n ms\n": n chunks of 8 KiB of seeded data, one every ms, then FIN;
//                                     "HELLO\n": "hi FROM\n" (FROM: the address the connection came from), then FIN
//   paced HOST PORT N MS STALL_MS     a paced download: prints {"started":true} at the first bytes, then one line:
//                                     {"outcome":"complete"|"stalled"|"error", code?, bytes, intact}
//                                     (stalled: nothing arrived for STALL_MS; intact: the bytes are the seeded ones)
//   connect HOST PORT                 one connection and "HELLO": {"ok":true,"from":...} or {"ok":false,"code":...}
//   until HOST PORT MAX_MS [FROM]     connections (1 s each) until one gets "hi" (from FROM, when given: one from
//                                     another address counts as "from:ADDR"): {"ok",from,ms,attempts,codes}
//   probe HOST PORT MS                for MS, a connection every 20 ms (1 s each), one line per try:
//                                     {"t": epoch ms at its end, "ok", "from"|"code"} (bench/uplink-change.ts)
import net from 'node:net';
import { seeded } from './seeded-bytes.js';

const CHUNK = 8192;
const [mode, host, portText, ...rest] = process.argv.slice(2);
const port = Number(portText);
const out = (o: object) => console.log(JSON.stringify(o));
if (mode !== 'server') setTimeout(() => (out({ outcome: 'error', ok: false, code: 'helper-timeout' }), process.exit(3)), 120_000).unref();

function serve(): void {
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    let line = '';
    const onData = (d: Buffer) => {
      line += d.toString('latin1');
      const nl = line.indexOf('\n');
      if (nl < 0) return;
      s.off('data', onData);
      const [cmd, a, b] = line.slice(0, nl).split(' ');
      if (cmd === 'HELLO') return void s.end(`hi ${s.remoteAddress?.replace(/^::ffff:/, '')}\n`);
      if (cmd !== 'PACED') return void s.destroy();
      const data = seeded(Number(a) * CHUNK);
      let i = 0;
      const timer = setInterval(() => {
        if (s.destroyed) return clearInterval(timer);
        s.write(data.subarray(i * CHUNK, (i + 1) * CHUNK));
        if (++i >= Number(a)) {
          clearInterval(timer);
          s.end();
        }
      }, Number(b));
    };
    s.on('data', onData);
  });
  srv.listen(port, host, () => out({ listening: `${host}:${port}` }));
}

function paced(n: number, ms: number, stallMs: number): void {
  const s = net.connect({ host, port });
  const chunks: Buffer[] = [];
  let bytes = 0;
  let started = false;
  let stall: NodeJS.Timeout | null = null;
  const finish = (outcome: string, code?: string) => {
    const got = Buffer.concat(chunks);
    out({ outcome, ...(code ? { code } : {}), bytes, intact: got.equals(seeded(n * CHUNK).subarray(0, got.length)) });
    process.exit(0);
  };
  const arm = () => {
    if (stall) clearTimeout(stall);
    stall = setTimeout(() => (s.destroy(), finish('stalled')), stallMs);
  };
  s.on('connect', () => {
    s.write(`PACED ${n} ${ms}\n`);
    arm();
  });
  s.on('data', (d) => {
    chunks.push(d);
    bytes += d.length;
    if (!started) {
      started = true;
      out({ started: true });
    }
    arm();
  });
  s.on('end', () => finish(bytes === n * CHUNK ? 'complete' : 'short'));
  s.on('error', (e: NodeJS.ErrnoException) => finish('error', e.code));
}

function hello(timeoutMs: number): Promise<{ ok: boolean; code?: string; from?: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => (s.destroy(), resolve({ ok: false, code: 'timeout' })), timeoutMs);
    let got = '';
    s.on('connect', () => s.write('HELLO\n'));
    s.on('data', (d) => (got += d));
    s.on('end', () => (clearTimeout(t), resolve(/^hi \S+\n$/.test(got) ? { ok: true, from: got.slice(3, -1) } : { ok: false, code: 'short' })));
    s.on('error', (e: NodeJS.ErrnoException) => (clearTimeout(t), resolve({ ok: false, code: e.code })));
  });
}

async function until(maxMs: number, from?: string): Promise<void> {
  const t0 = performance.now();
  const codes: string[] = [];
  for (let attempts = 1; ; attempts++) {
    const r = await hello(1000);
    if (r.ok && (from === undefined || r.from === from)) return out({ ok: true, from: r.from, ms: Math.round(performance.now() - t0), attempts, codes });
    codes.push(r.ok ? `from:${r.from}` : (r.code ?? '?'));
    if (performance.now() - t0 > maxMs) return out({ ok: false, ms: Math.round(performance.now() - t0), attempts, codes: codes.slice(-5) });
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function probe(ms: number): Promise<void> {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
    const r = await hello(1000);
    out({ t: Date.now(), ...r });
  }
}

switch (mode) {
  case 'server':
    serve();
    break;
  case 'paced':
    paced(Number(rest[0]), Number(rest[1]), Number(rest[2]));
    break;
  case 'connect':
    out(await hello(5000));
    process.exit(0);
    break;
  case 'until':
    await until(Number(rest[0]), rest[1]);
    process.exit(0);
    break;
  case 'probe':
    await probe(Number(rest[0]));
    process.exit(0);
    break;
  default:
    out({ ok: false, code: `unknown mode ${mode}` });
    process.exit(2);
}
