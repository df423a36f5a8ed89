// Application-level test peers for the L7 proxy tests, run in a namespace:
//   server HOST   HTTP on HOST:8080 and a server-speaks-first greeting on HOST:2525.
//     GET  /headers      → the request's headers as JSON (what reached the server)
//     POST /upload       → sha256 hex of the body, and whether it came chunked
//     GET  /ws + Upgrade: websocket → 101, then echoes every byte until EOF
//     :2525              → writes "220 greeting\r\n" at once, then echoes a line and closes
//   ws HOST PORT N         upgrade on /ws with Host ws.example, send N seeded bytes, expect the echo; prints the sha256s
//   greet HOST PORT        time to the greeting's first byte, in ms
//   alternate HOST PORT    three requests on one kept-alive connection with Host api, other, api; prints what each saw
// Every client mode is bounded in time and prints one JSON line.
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';

const [mode, host, portText, arg] = process.argv.slice(2);
const deadline = setTimeout(
  () => {
    console.log(JSON.stringify({ ok: false, error: 'timeout' }));
    process.exit(3);
  },
  mode === 'server' ? 3_600_000 : 120_000,
);
deadline.unref();

function seeded(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

if (mode === 'server') {
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    if (req.url === '/headers') {
      res.setHeader('content-type', 'application/json');
      return void res.end(JSON.stringify(req.headers));
    }
    if (req.url === '/upload' && req.method === 'POST') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ sha256: h.digest('hex'), bytes: n, chunked: req.headers['transfer-encoding'] === 'chunked' })));
      return;
    }
    res.statusCode = 404;
    res.end('no\n');
  });
  server.on('upgrade', (req, socket: net.Socket, head) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n');
    if (head.length) socket.write(head);
    socket.pipe(socket);
  });
  server.listen(8080, host, () => {
    net
      .createServer((s) => {
        s.write('220 greeting\r\n');
        s.once('data', (d) => s.end(d));
        s.on('error', () => {});
      })
      .listen(2525, host, () => console.log('listening'));
  });
} else if (mode === 'ws') {
  const n = Number(arg);
  const data = seeded(n);
  const req = http.request({
    host,
    port: Number(portText),
    path: '/ws',
    headers: { host: 'ws.example', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
  });
  req.on('upgrade', (res, socket, head) => {
    const got: Buffer[] = [head];
    let len = head.length;
    socket.on('data', (c: Buffer) => {
      got.push(c);
      len += c.length;
      if (len >= n) {
        socket.end();
        console.log(JSON.stringify({ ok: true, status: res.statusCode, sent: sha(data), echoed: sha(Buffer.concat(got).subarray(0, n)) }));
        process.exit(0);
      }
    });
    socket.write(data);
  });
  req.on('response', (res) => {
    console.log(JSON.stringify({ ok: false, status: res.statusCode }));
    process.exit(1);
  });
  req.on('error', (e) => {
    console.log(JSON.stringify({ ok: false, error: e.message }));
    process.exit(1);
  });
  req.end();
} else if (mode === 'greet') {
  const t0 = performance.now();
  const s = net.connect(Number(portText), host);
  s.once('data', (d) => {
    console.log(JSON.stringify({ ok: d.toString().startsWith('220 greeting'), ms: Math.round(performance.now() - t0) }));
    s.destroy();
    process.exit(0);
  });
  s.on('error', (e) => {
    console.log(JSON.stringify({ ok: false, error: e.message }));
    process.exit(1);
  });
} else if (mode === 'alternate') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const seen: { host: string; authorization?: string; sameSocket: boolean }[] = [];
  let socket: unknown = null;
  const one = (h: string) =>
    new Promise<void>((resolve, reject) => {
      const req = http.get({ host, port: Number(portText), path: '/headers', agent, headers: { host: h } }, (res) => {
        const sock = res.socket;
        let body = '';
        res.setEncoding('utf8').on('data', (c) => (body += c));
        res.on('end', () => {
          const j = JSON.parse(body);
          seen.push({ host: h, authorization: j.authorization, sameSocket: socket === null || socket === sock });
          socket = sock;
          resolve();
        });
      });
      req.on('error', reject);
    });
  (async () => {
    for (const h of ['api.example.com', 'other.example', 'api.example.com']) await one(h);
    console.log(JSON.stringify({ ok: true, seen }));
    process.exit(0);
  })().catch((e) => {
    console.log(JSON.stringify({ ok: false, error: (e as Error).message }));
    process.exit(1);
  });
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
