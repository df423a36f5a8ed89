// DNS over TCP (RFC 1035 §4.2.2, RFC 7766): two-byte length, message, repeated.
// Serves the gateway's own DNS to clients that retry over TCP after a
// truncated UDP answer. Bounded: a message is at most 65535 bytes by framing.
import type { Duplex } from 'node:stream';

export function serveDnsOverTcp(stream: Duplex, answer: (q: Buffer) => Promise<Buffer | null>): Promise<string> {
  return new Promise((resolve) => {
    let acc = Buffer.alloc(0);
    let busy = Promise.resolve();
    stream.on('data', (d: Buffer) => {
      acc = Buffer.concat([acc, d]);
      while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
        const q = acc.subarray(2, 2 + acc.readUInt16BE(0));
        acc = acc.subarray(2 + q.length);
        busy = busy.then(async () => {
          const r = await answer(Buffer.from(q)).catch(() => null);
          if (!r || stream.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          stream.write(Buffer.concat([len, r]));
        });
      }
    });
    stream.on('end', () => void busy.then(() => stream.end()));
    stream.on('error', () => resolve('client-reset'));
    stream.on('close', () => resolve('closed'));
  });
}
