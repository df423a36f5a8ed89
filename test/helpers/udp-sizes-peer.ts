// One UDP datagram of each size to an echo server, each checked byte for byte
// (sha256) when it comes back; a datagram lost is tried again, three tries of
// 2 s each. Run inside a namespace:
//   ip netns exec NS node --import tsx test/helpers/udp-sizes-peer.ts HOST PORT SIZE...
// Prints one JSON line: {"1473":"ok","65000":"timeout",...}.
import dgram from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';

const [host, portText, ...sizes] = process.argv.slice(2);
const port = Number(portText);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function one(size: number): Promise<string> {
  const s = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
  const data = randomBytes(size);
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.connect(port, host, () => resolve());
    });
    for (let attempt = 0; attempt < 3; attempt++) {
      const got = await new Promise<Buffer | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 2000);
        s.once('message', (m) => {
          clearTimeout(timer);
          resolve(m);
        });
        s.send(data);
      });
      if (got === null) continue;
      return got.length === size && sha(got) === sha(data) ? 'ok' : `corrupt (${got.length} bytes)`;
    }
    return 'timeout';
  } catch (e) {
    return `error ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  } finally {
    s.close();
  }
}

const out: Record<string, string> = {};
for (const size of sizes) out[size] = await one(Number(size));
console.log(JSON.stringify(out));
