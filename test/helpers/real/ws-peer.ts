// WebSocket echo over the `ws` package, both ends. The client sends text and
// binary messages from 1 byte to 1 MB, checks each echo byte for byte, then
// closes with 1000 and checks the server's close code.
//   ws-peer.ts server HOST PORT       (prints "listening")
//   ws-peer.ts client URL COUNT       (prints {"ok":true,...} or what differed)
import { WebSocketServer, WebSocket } from 'ws';
import { randomBytes } from 'node:crypto';

const [role, a, b] = process.argv.slice(2);
if (role === 'server') {
  const wss = new WebSocketServer({ host: a, port: Number(b), maxPayload: 2 << 20 });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  wss.on('listening', () => console.log('listening'));
} else {
  const count = Number(b);
  const ws = new WebSocket(a, { maxPayload: 2 << 20 });
  const sizes = [1, 125, 126, 65535, 65536, 1 << 20];
  let i = 0;
  let sent: Buffer | string = '';
  const fail = (why: string) => {
    console.log(JSON.stringify({ ok: false, why }));
    process.exit(1);
  };
  const timer = setTimeout(() => fail(`timeout at message ${i}`), 60_000);
  const next = () => {
    if (i === count) return ws.close(1000, 'done');
    const n = sizes[i % sizes.length];
    sent =
      i % 2 === 0
        ? randomBytes(n)
        : randomBytes(Math.ceil(n / 2))
            .toString('hex')
            .slice(0, n);
    ws.send(sent);
  };
  ws.on('open', next);
  ws.on('message', (data: Buffer, isBinary) => {
    const ok = typeof sent === 'string' ? !isBinary && data.toString() === sent : isBinary && data.equals(sent);
    if (!ok) fail(`message ${i}: echo differs (${data.length} bytes, binary ${isBinary})`);
    i++;
    next();
  });
  ws.on('close', (code) => {
    clearTimeout(timer);
    if (code !== 1000 || i !== count) fail(`closed with ${code} after ${i}`);
    console.log(JSON.stringify({ ok: true, messages: i }));
  });
  ws.on('error', (e) => fail(e.message));
}
