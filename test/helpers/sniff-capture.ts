// Shared by the sniffing tests: a replayable PRNG for fuzzing, and the first
// flight of Node's own TLS client, captured through a Duplex (no network).
import tls from 'node:tls';
import { Duplex } from 'node:stream';

/** Deterministic PRNG (mulberry32) so fuzz failures can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export const randInt = (rnd: () => number, lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

export function randomBytes(rnd: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (rnd() * 256) | 0;
  return b;
}

/** A Duplex that keeps what is written to it and never answers. */
export function sink(): { raw: Duplex; written: () => Buffer } {
  const chunks: Buffer[] = [];
  const raw = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { raw, written: () => Buffer.concat(chunks) };
}

/** The ClientHello Node's TLS client sends with these options. */
export function captureClientHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const raw = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
        if (done) return;
        done = true;
        // let any same-tick follow-up writes land before tearing down
        setImmediate(() => {
          sock.destroy();
          raw.destroy();
          resolve(Buffer.concat(chunks));
        });
      },
    });
    const sock = tls.connect({ rejectUnauthorized: false, ...opts, socket: raw });
    sock.on('error', (err) => {
      if (!done) reject(err);
    });
  });
}
