// Small TCP peers for end-to-end tests, run inside a namespace with
// `ip netns exec NS node --import tsx test/helpers/tcp-peer.ts MODE ...`.
// Every client mode is bounded in time and prints one JSON line with its
// result; the server runs until the test that started it ends it.
//
//   server HOST PORT           hash-sink + echo + scripted behaviours, chosen by the first line:
//                                "HASH\n"     → read to EOF, reply sha256 hex, close
//                                "ECHO\n"     → echo until EOF, then close (half-close aware)
//                                "SEND n\n"   → send n bytes of seeded data, then FIN first
//                                "RESET\n"    → send 1000 bytes then reset the connection
//                                "WATCH\n"    → read, and print {"watch":"reset"|"end"} when the client goes
//                                "STALL\n"    → accept and never read (a paused socket sees no reset: check with ss)
//                                "HALF n\n"   → send n bytes of seeded data and FIN first, keep reading; at the
//                                               client's FIN print {"half":{"bytes":N,"sha256":HEX}}
//   upload HOST PORT FILE      send FILE after "HASH\n", half-close, print the server's hash
//   concurrent HOST PORT N     N parallel ECHO connections each moving 64 KiB, print ok count
//   client-first HOST PORT     send data, half-close, expect echo then EOF
//   server-first HOST PORT N   ask the server to close first, check N bytes and EOF
//   reset HOST PORT            expect a reset after some data
//   client-reset HOST PORT     send some data after "WATCH\n", then reset the connection
//   stall HOST PORT BYTES MS   after "STALL\n", write BYTES until done or MS pass, then reset; print how far it got
//   half-close HOST PORT N M   "HALF N\n": read N bytes to the server's FIN, then send M more bytes and close
import net from 'node:net';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { seeded } from './seeded-bytes.js';

const [mode, host, portText, arg] = process.argv.slice(2);
const port = Number(portText);
const deadline = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: 'timeout' }));
  process.exit(3);
}, 120_000);
deadline.unref();
if (mode === 'server') clearTimeout(deadline);

function done(result: object, code = 0): never {
  console.log(JSON.stringify(result));
  process.exit(code);
}

function readLine(sock: net.Socket, cb: (line: string, rest: Buffer) => void): void {
  let acc = Buffer.alloc(0);
  const onData = (d: Buffer) => {
    acc = Buffer.concat([acc, d]);
    const nl = acc.indexOf(10);
    if (nl >= 0) {
      sock.off('data', onData);
      sock.pause();
      cb(acc.subarray(0, nl).toString(), acc.subarray(nl + 1));
    }
  };
  sock.on('data', onData);
}

function serve(): void {
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    sock.on('error', () => {});
    readLine(sock, (line, rest) => {
      if (line === 'HASH') {
        const h = createHash('sha256');
        h.update(rest);
        sock.on('data', (d) => h.update(d));
        sock.on('end', () => sock.end(h.digest('hex')));
        sock.resume();
      } else if (line === 'ECHO') {
        if (rest.length) sock.write(rest);
        sock.pipe(sock);
        sock.resume();
      } else if (line.startsWith('SEND ')) {
        sock.end(seeded(Number(line.slice(5)), 7));
        sock.resume();
      } else if (line === 'WATCH') {
        sock.removeAllListeners('error');
        sock.on('error', (e: NodeJS.ErrnoException) => console.log(JSON.stringify({ watch: e.code === 'ECONNRESET' ? 'reset' : e.code })));
        sock.on('end', () => console.log(JSON.stringify({ watch: 'end' })));
        sock.resume();
      } else if (line === 'STALL') {
        // paused by readLine and never resumed: the receive window closes
      } else if (line.startsWith('HALF ')) {
        const h = createHash('sha256');
        let bytes = rest.length;
        h.update(rest);
        sock.on('data', (d: Buffer) => {
          bytes += d.length;
          h.update(d);
        });
        sock.on('end', () => console.log(JSON.stringify({ half: { bytes, sha256: h.digest('hex') } })));
        sock.end(seeded(Number(line.slice(5)), 7));
        sock.resume();
      } else if (line === 'RESET') {
        sock.write(seeded(1000, 9), () => setTimeout(() => sock.resetAndDestroy(), 100));
      } else {
        sock.destroy();
      }
    });
  });
  server.listen(port, host, () => console.log(JSON.stringify({ listening: `${host}:${port}` })));
}

function connect(): net.Socket {
  const s = net.connect({ host, port, allowHalfOpen: true });
  s.on('error', (e) => done({ ok: false, error: e.message }, 1));
  return s;
}

function upload(file: string): void {
  const s = connect();
  const local = createHash('sha256');
  let reply = '';
  s.on('connect', () => {
    s.write('HASH\n');
    const rs = createReadStream(file);
    rs.on('data', (d) => local.update(d));
    rs.pipe(s);
  });
  s.on('data', (d) => (reply += d.toString()));
  s.on('end', () => {
    const mine = local.digest('hex');
    done({ ok: reply === mine, local: mine, remote: reply });
  });
}

function concurrent(n: number): void {
  const payload = seeded(64 * 1024, 3);
  const want = createHash('sha256').update(payload).digest('hex');
  let ok = 0;
  let finished = 0;
  const errors: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host, port, allowHalfOpen: true });
    const h = createHash('sha256');
    s.on('connect', () => {
      s.write('ECHO\n');
      s.end(payload);
    });
    s.on('data', (d) => h.update(d));
    s.on('error', (e) => errors.push(e.message));
    s.on('close', () => {
      if (h.digest('hex') === want) ok++;
      if (++finished === n) done({ ok: ok === n, completed: ok, errors: errors.slice(0, 5) });
    });
  }
}

function clientFirst(): void {
  const s = connect();
  const payload = seeded(300_000, 5);
  const h = createHash('sha256');
  s.on('connect', () => {
    s.write('ECHO\n');
    s.end(payload); // we close first (our FIN), then read the echo to the server's FIN
  });
  s.on('data', (d) => h.update(d));
  s.on('end', () => {
    const ok = h.digest('hex') === createHash('sha256').update(payload).digest('hex');
    done({ ok });
  });
}

function serverFirst(n: number): void {
  const s = connect();
  const h = createHash('sha256');
  let got = 0;
  s.on('connect', () => s.write(`SEND ${n}\n`));
  s.on('data', (d) => {
    got += d.length;
    h.update(d);
  });
  s.on('end', () => {
    // The server closed first; we close our side after seeing its FIN.
    const ok = got === n && h.digest('hex') === createHash('sha256').update(seeded(n, 7)).digest('hex');
    s.end(() => done({ ok, got }));
  });
}

function expectReset(): void {
  const s = net.connect({ host, port });
  let got = 0;
  s.on('connect', () => s.write('RESET\n'));
  s.on('data', (d) => (got += d.length));
  s.on('error', (e: NodeJS.ErrnoException) => done({ ok: e.code === 'ECONNRESET', code: e.code, got }));
  s.on('end', () => done({ ok: false, error: 'clean end instead of reset', got }, 1));
}

function clientReset(): void {
  const s = connect();
  s.on('connect', () =>
    s.write(Buffer.concat([Buffer.from('WATCH\n'), seeded(5000, 11)]), () =>
      setTimeout(() => {
        s.resetAndDestroy();
        done({ ok: true });
      }, 200),
    ),
  );
}

/** Writes until `total` bytes are flushed to the kernel or `ms` pass; backpressure shows as flushed < total. */
function stall(total: number, ms: number): void {
  const s = connect();
  const chunk = seeded(64 * 1024, 13);
  let queued = 0;
  let flushed = 0;
  const started = Date.now();
  const report = (finished: boolean) => {
    s.removeAllListeners('error');
    s.on('error', () => {});
    s.resetAndDestroy();
    done({ ok: true, finished, flushed, queued, ms: Date.now() - started });
  };
  const timer = setTimeout(() => report(false), ms);
  const pump = () => {
    while (queued < total) {
      const n = Math.min(chunk.length, total - queued);
      queued += n;
      const more = s.write(n === chunk.length ? chunk : chunk.subarray(0, n), () => {
        flushed += n;
        if (flushed === total) {
          clearTimeout(timer);
          report(true);
        }
      });
      if (!more) return void s.once('drain', pump);
    }
  };
  s.on('connect', () => {
    s.write('STALL\n');
    pump();
  });
}

/** The server sends n bytes and its FIN first; the client reads them all, then sends m bytes and closes its side. */
function halfClose(n: number, m: number): void {
  const s = connect();
  const h = createHash('sha256');
  let got = 0;
  const later = seeded(m, 17);
  s.on('connect', () => s.write(`HALF ${n}\n`));
  s.on('data', (d) => {
    got += d.length;
    h.update(d);
  });
  s.on('end', () => {
    // the server's FIN has arrived: our direction stays open
    const ok = got === n && h.digest('hex') === createHash('sha256').update(seeded(n, 7)).digest('hex');
    s.end(later);
    s.on('close', (hadError) => done({ ok: ok && !hadError, got, sent: m, sentSha256: createHash('sha256').update(later).digest('hex') }));
  });
}

switch (mode) {
  case 'server':
    serve();
    break;
  case 'upload':
    upload(arg);
    break;
  case 'concurrent':
    concurrent(Number(arg));
    break;
  case 'client-first':
    clientFirst();
    break;
  case 'server-first':
    serverFirst(Number(arg));
    break;
  case 'reset':
    expectReset();
    break;
  case 'client-reset':
    clientReset();
    break;
  case 'stall':
    stall(Number(arg), Number(process.argv[6]));
    break;
  case 'half-close':
    halfClose(Number(arg), Number(process.argv[6]));
    break;
  default:
    done({ ok: false, error: `unknown mode ${mode}` }, 2);
}
