// A small SOCKS5 server for unit tests, on loopback: method negotiation
// (none, or RFC 1929 username/password), UDP ASSOCIATE only, a relay socket
// per association that hands each datagram's payload and destination to
// `answer`; the association ends when its control connection does.
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { parseUdpHeader, udpHeaderFor } from '../../src/proxy/socks5/udp-header.js';

export interface Fake {
  port: number;
  controls: net.Socket[];
  /** What the relay answers to a datagram: a reply (header + data) or nothing. */
  answer: (data: Buffer, dst: { host: string; port: number }) => Buffer | null;
  authSeen: string[];
}

/** The part of a tap Test the server uses; a tap `Test` fits it as it is. */
export interface FakeHost {
  equal(found: unknown, wanted: unknown, msg: string): unknown;
  teardown(fn: () => unknown): void;
}

export async function fakeSocks(t: FakeHost, opts: { auth?: [string, string]; refuse?: number } = {}): Promise<Fake> {
  const fake: Fake = { port: 0, controls: [], answer: (d, dst) => Buffer.concat([udpHeaderFor(dst.host, dst.port), d]), authSeen: [] };
  const serve = async (c: net.Socket) => {
    const read = async (n: number) => {
      while (c.readableLength < n) await once(c, 'readable');
      return c.read(n) as Buffer;
    };
    c.pause();
    const [, nMethods] = await read(2);
    const methods = [...(await read(nMethods))];
    if (opts.auth) {
      if (!methods.includes(2)) return c.end(Buffer.from([5, 0xff]));
      c.write(Buffer.from([5, 2]));
      const [, ulen] = await read(2);
      const user = (await read(ulen)).toString();
      const [plen] = await read(1);
      const pass = (await read(plen)).toString();
      fake.authSeen.push(`${user}:${pass}`);
      const ok = user === opts.auth[0] && pass === opts.auth[1];
      c.write(Buffer.from([1, ok ? 0 : 1]));
      if (!ok) return c.end();
    } else c.write(Buffer.from([5, 0]));
    const head = await read(4);
    t.equal(head[1], 3, 'the command is UDP ASSOCIATE');
    const addrLen = head[3] === 1 ? 4 : head[3] === 4 ? 16 : (await read(1))[0];
    await read(addrLen + 2);
    if (opts.refuse) return c.end(Buffer.from([5, opts.refuse, 0, 1, 0, 0, 0, 0, 0, 0]));
    const relay = dgram.createSocket('udp4');
    relay.bind(0, '127.0.0.1', () => {
      const p = relay.address().port;
      // BND.ADDR all zeros: "the address you reached me on"
      c.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, p >> 8, p & 255]));
    });
    relay.on('message', (m, from) => {
      const h = parseUdpHeader(m);
      if (typeof h === 'string') return;
      const out = fake.answer(m.subarray(h.length), h);
      if (out) relay.send(out, from.port, from.address);
    });
    c.on('close', () => relay.close());
    c.resume();
  };
  const server = net.createServer((c) => {
    fake.controls.push(c);
    c.on('error', () => {});
    // A client that resets mid-handshake rejects a pending read: that ends
    // this connection only, never the test process.
    serve(c).catch(() => c.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  fake.port = (server.address() as net.AddressInfo).port;
  t.teardown(() => {
    for (const c of fake.controls) c.destroy();
    server.close();
  });
  return fake;
}
