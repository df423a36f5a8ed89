// UDP peers that prove a relay byte for byte, run inside a namespace with
// `ip netns exec NS node --import tsx test/helpers/udp-hash-peer.ts MODE ...`.
//   server HOST PORT           echo each datagram to its sender and hash what each
//                              sender sent; "FIN" is answered with that sender's
//                              { n, bytes, sha256 } instead of an echo
//   client HOST PORT N SEED    a CONNECTED socket (it takes replies from HOST:PORT
//                              only) sends N datagrams of seeded random data, one at
//                              a time, each checked against its echo, then FIN; prints
//                              { n, bytes, sha256 (sent), echoSha256, server: {...}, localPort }
// IPv4 or IPv6 by HOST. Bounded: 3 s per reply, 60 s in all; one JSON line.
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';

const [mode, host, portText, nText, seedText] = process.argv.slice(2);
const port = Number(portText);
const type = isIPv6(host) ? 'udp6' : 'udp4';
const out = (o: object, code = 0) => {
  console.log(JSON.stringify(o));
  process.exit(code);
};

if (mode === 'server') {
  const peers = new Map<string, { n: number; bytes: number; hash: ReturnType<typeof createHash> }>();
  const s = dgram.createSocket(type);
  s.on('message', (m, r) => {
    const key = `${r.address}|${r.port}`;
    let p = peers.get(key);
    if (!p) peers.set(key, (p = { n: 0, bytes: 0, hash: createHash('sha256') }));
    if (m.length === 3 && m.toString() === 'FIN') {
      const summary = { from: `${r.address}:${r.port}`, n: p.n, bytes: p.bytes, sha256: p.hash.digest('hex') };
      peers.delete(key);
      console.log(JSON.stringify(summary));
      s.send(Buffer.from(JSON.stringify(summary)), r.port, r.address);
      return;
    }
    p.n++;
    p.bytes += m.length;
    p.hash.update(m);
    s.send(m, r.port, r.address);
  });
  s.bind(port, host, () => console.log(JSON.stringify({ listening: `${host}:${port}` })));
} else if (mode === 'client') {
  setTimeout(() => out({ ok: false, error: 'timeout' }, 3), 60_000).unref();
  const n = Math.min(Number(nText), 10_000);
  // seeded xorshift: both runs of a test send the same bytes
  let x = Number(seedText) | 0 || 1;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const payload = (i: number) => {
    // mostly below one MTU, every 8th bigger than a 1500-byte link: fragmented both ways
    const len = i % 8 === 7 ? 3000 + (rnd() % 3000) : 1 + (rnd() % 1400);
    const b = Buffer.allocUnsafe(len);
    for (let k = 0; k < len; k++) b[k] = rnd() & 0xff;
    if (b.length === 3 && b.toString() === 'FIN') b[0] ^= 1;
    return b;
  };
  const s = dgram.createSocket(type);
  const sent = createHash('sha256');
  const echoed = createHash('sha256');
  let bytes = 0;
  const next = (): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        s.off('message', onMsg);
        reject(new Error('no reply within 3 s'));
      }, 3000);
      const onMsg = (m: Buffer) => {
        clearTimeout(timer);
        s.off('message', onMsg);
        resolve(m);
      };
      s.on('message', onMsg);
    });
  s.on('error', (err) => out({ ok: false, error: String(err) }, 2));
  // reports its own failure (out() exits)
  const exchange = async (): Promise<void> => {
    try {
      for (let i = 0; i < n; i++) {
        const b = payload(i);
        sent.update(b);
        bytes += b.length;
        const reply = next();
        s.send(b);
        const m = await reply;
        if (!m.equals(b)) throw new Error(`datagram ${i}: echo differs (${m.length} bytes back for ${b.length})`);
        echoed.update(m);
      }
      const fin = next();
      s.send(Buffer.from('FIN'));
      const server = JSON.parse((await fin).toString());
      out({ ok: true, n, bytes, sha256: sent.digest('hex'), echoSha256: echoed.digest('hex'), server, localPort: s.address().port });
    } catch (e) {
      out({ ok: false, error: (e as Error).message, bytes }, 1);
    }
  };
  s.connect(port, host, () => void exchange());
} else {
  out({ ok: false, error: `unknown mode ${mode}` }, 2);
}
