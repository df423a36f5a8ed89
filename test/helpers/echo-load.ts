// N connections to a tcp-peer ECHO server, each sending random chunks at a
// steady pace and hashing what it sent and what came back, until STOPFILE
// exists (or MAX_MS passes); then each half-closes, reads the echo to its
// end and compares. Prints {"ready":N} once all are open and echoing, then
// one JSON line: {ok, connections, bytes, failures: [...]}. A reset, an
// error, a short or wrong echo are failures.
//
//   node --import tsx test/helpers/echo-load.ts HOST PORT N STOPFILE
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

const [host, portText, nText, stopFile] = process.argv.slice(2);
const port = Number(portText);
const n = Number(nText);
const CHUNK = 2048;
const EVERY_MS = 100;
const MAX_MS = 240_000;

interface Conn {
  sent: number;
  received: number;
  sentHash: ReturnType<typeof createHash>;
  recvHash: ReturnType<typeof createHash>;
  failure?: string;
  done: Promise<void>;
  sock: net.Socket;
  timer?: NodeJS.Timeout;
}

function open(i: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, allowHalfOpen: true });
    const c = { sent: 0, received: 0, sentHash: createHash('sha256'), recvHash: createHash('sha256'), sock } as Conn;
    let finish: () => void;
    c.done = new Promise((r) => (finish = r));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      c.failure ??= `connection ${i}: ${e.code ?? e.message}`;
      reject(e);
      finish();
    });
    sock.on('data', (d: Buffer) => {
      c.received += d.length;
      c.recvHash.update(d);
    });
    sock.on('end', () => {
      if (c.received !== c.sent) c.failure ??= `connection ${i}: echoed ${c.received} of ${c.sent} bytes`;
      else if (c.recvHash.digest('hex') !== c.sentHash.digest('hex')) c.failure ??= `connection ${i}: the echo differs`;
      finish();
    });
    sock.on('close', () => finish());
    sock.on('connect', () => {
      sock.write('ECHO\n');
      resolve(c);
    });
  });
}

function pace(c: Conn): void {
  c.timer = setInterval(() => {
    if (c.sock.destroyed || c.sock.writableLength > 64 * 1024) return;
    const b = randomBytes(CHUNK);
    c.sent += b.length;
    c.sentHash.update(b);
    c.sock.write(b);
  }, EVERY_MS);
}

const conns: Conn[] = [];
for (let i = 0; i < n; i++) conns.push(await open(i));
conns.forEach(pace);
// every connection has had its first chunks echoed: they all transfer
for (let waited = 0; conns.some((c) => c.received === 0) && waited < 30_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ ready: conns.filter((c) => c.received > 0).length }));
const started = Date.now();
while (!existsSync(stopFile) && Date.now() - started < MAX_MS && conns.every((c) => !c.failure)) await new Promise((r) => setTimeout(r, 100));
for (const c of conns) {
  clearInterval(c.timer);
  c.sock.end();
}
await Promise.race([Promise.all(conns.map((c) => c.done)), new Promise((r) => setTimeout(r, 30_000))]);
const failures = conns.flatMap((c, i) => (c.failure ? [c.failure] : c.sock.readableEnded ? [] : [`connection ${i}: no end within 30 s`]));
console.log(JSON.stringify({ ok: failures.length === 0, connections: n, bytes: conns.reduce((a, c) => a + c.sent, 0), ms: Date.now() - started, failures: failures.slice(0, 20) }));
process.exit(0);
