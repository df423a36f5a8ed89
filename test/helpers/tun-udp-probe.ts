// Sends UDP datagrams of the given sizes to HOST:PORT and checks that each one
// comes back byte for byte from HOST:PORT (the echo worker reflects them).
// Stop-and-wait, up to 3 sends per datagram, 2 s each; bounded overall.
//   node --import tsx test/helpers/tun-udp-probe.ts HOST PORT SIZES [COUNT]
// SIZES: comma-separated payload sizes; COUNT datagrams of each (default 5).
// stdout: one JSON line {ok, sent, received, mismatches, resends, sizes}.
import dgram from 'node:dgram';

const [host, portText, sizesText, countText] = process.argv.slice(2);
const port = Number(portText);
const sizes = sizesText.split(',').map(Number);
const count = Number(countText ?? 5);

function payload(size: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (seq * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  if (size >= 4) b.writeUInt32BE(seq, 0);
  return b;
}

const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
const result = { ok: false, sent: 0, received: 0, mismatches: 0, resends: 0, sizes, error: '' };
const overall = setTimeout(() => {
  result.error = 'timeout';
  console.log(JSON.stringify(result));
  process.exit(3);
}, 60_000);

let waiting: ((msg: Buffer) => void) | null = null;
sock.on('message', (msg, rinfo) => {
  if (rinfo.address !== host || rinfo.port !== port) return;
  waiting?.(msg);
});
sock.on('error', (e) => {
  result.error = e.message;
});

function exchange(p: Buffer): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      waiting = null;
      resolve(null);
    }, 2000);
    waiting = (msg) => {
      clearTimeout(t);
      waiting = null;
      resolve(msg);
    };
    sock.send(p, port, host);
  });
}

await new Promise<void>((r) => sock.bind(0, () => r()));
let seq = 1;
for (const size of sizes) {
  for (let k = 0; k < count; k++) {
    const p = payload(size, seq++);
    let reply: Buffer | null = null;
    for (let attempt = 0; attempt < 3 && reply === null; attempt++) {
      if (attempt > 0) result.resends++;
      result.sent++;
      reply = await exchange(p);
    }
    if (reply === null) continue;
    result.received++;
    if (!reply.equals(p)) result.mismatches++;
  }
}
result.ok = result.received === sizes.length * count && result.mismatches === 0;
clearTimeout(overall);
sock.close();
console.log(JSON.stringify(result));
