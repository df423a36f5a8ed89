// UDP peers for end-to-end tests, run inside a namespace with
// `ip netns exec NS node --import tsx test/helpers/udp-peer.ts MODE ...`.
//   server HOST PORT          echo every datagram back to its sender
//   echo HOST PORT N [WINDOW] send N numbered datagrams (at most WINDOW, default 64, in flight), check every
//                             echo, print counts; with a WINDOW the first datagram goes alone until answered,
//                             as real protocols open a flow (the gateway holds only a few while it sets one up)
//   refused HOST PORT         send to a closed port; print the error code the socket reports
// Bounded in time; prints one JSON line.
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';

const [mode, host, portText, arg, windowText] = process.argv.slice(2);
const port = Number(portText);
const out = (o: object, code = 0) => {
  console.log(JSON.stringify(o));
  process.exit(code);
};
// bounded: a client gives up after a minute; a server serves a whole test file (stop-logging's took
// 80 s under the full suite, and its last cases found the server gone), then stops by itself
setTimeout(() => out({ ok: false, error: 'timeout' }, 3), mode === 'server' ? 600_000 : 60_000).unref();

function payloadFor(i: number): Buffer {
  const len = 16 + ((i * 37) % 1200);
  const b = Buffer.alloc(len);
  b.writeUInt32BE(i, 0);
  createHash('sha256').update(String(i)).digest().copy(b, 4, 0, 12);
  for (let k = 16; k < len; k++) b[k] = (i + k) & 0xff;
  return b;
}

if (mode === 'server') {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(port, host, () => console.log(JSON.stringify({ listening: `${host}:${port}` })));
} else if (mode === 'echo') {
  const n = Number(arg);
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const seen = new Uint8Array(n);
  let received = 0;
  let corrupt = 0;
  let next = 0;
  let inflight = 0;
  const window = Number(windowText ?? 64);
  let opened = windowText === undefined;
  const pump = () => {
    while (inflight < (opened ? window : 1) && next < n) {
      s.send(payloadFor(next++));
      inflight++;
    }
  };
  let idle: NodeJS.Timeout | null = null;
  const finish = () => out({ ok: corrupt === 0, sent: next, received, corrupt, lost: n - received });
  s.on('message', (m) => {
    const i = m.readUInt32BE(0);
    if (i < n && !seen[i] && m.equals(payloadFor(i))) {
      seen[i] = 1;
      received++;
      opened = true;
    } else corrupt++;
    inflight--;
    pump();
    if (received === n) finish();
  });
  s.connect(port, host, () => {
    pump();
    // a lost datagram frees its slot after a pause, so the run always ends
    const tick = setInterval(() => {
      if (next >= n) {
        clearInterval(tick);
        idle = setTimeout(finish, 1000);
      } else {
        inflight = Math.max(0, inflight - 8);
        pump();
      }
    }, 200);
  });
  void idle;
} else if (mode === 'refused') {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('error', (e: NodeJS.ErrnoException) => out({ ok: true, code: e.code }));
  s.connect(port, host, () => {
    s.send(Buffer.from('anyone?'));
    setTimeout(() => s.send(Buffer.from('anyone?')), 300);
    setTimeout(() => out({ ok: false, error: 'no error reported' }, 1), 3000);
  });
} else out({ ok: false, error: `unknown mode ${mode}` }, 2);
