// Client of a server-first service (the server writes a greeting on accept,
// then closes): COUNT connections, CONCURRENCY at a time, each read to EOF and
// checked byte for byte against the expected sha256. Prints one JSON line:
// {"exact":N,"wrong":[lengths],"errors":[codes]}. Runs in a namespace, or
// under `tunsteer run --`. A connection silent for IDLE_MS (15 s unless
// given) counts as ETIMEDOUT.
//   server-first-client.ts HOST PORT COUNT CONCURRENCY SHA256 [IDLE_MS]
import net from 'node:net';
import { createHash } from 'node:crypto';

const [host, port, count, concurrency, sha, idleMs = '15000'] = process.argv.slice(2);
const result = { exact: 0, wrong: [] as number[], errors: [] as string[] };

function once(): Promise<void> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    let n = 0;
    const s = net.connect({ host, port: Number(port) });
    s.setTimeout(Number(idleMs), () => s.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    s.on('data', (d) => {
      h.update(d);
      n += d.length;
    });
    s.on('end', () => {
      if (h.digest('hex') === sha) result.exact++;
      else result.wrong.push(n);
      s.destroy();
      resolve();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      result.errors.push(e.code ?? e.message);
      resolve();
    });
  });
}

let started = 0;
const total = Number(count);
await Promise.all(
  Array.from({ length: Number(concurrency) }, async () => {
    while (started < total) {
      started++;
      await once();
    }
  }),
);
console.log(JSON.stringify(result));
