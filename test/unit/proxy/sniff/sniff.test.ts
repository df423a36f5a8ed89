// Sniffing the first client bytes: TLS ClientHello (real ones from Node's TLS
// client), HTTP request heads, garbage, and the stream wrapper that puts the
// bytes back.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { sniffTlsClientHello } from '../../../../src/proxy/sniff/tls-client-hello.js';
import { sniffHttpHead } from '../../../../src/proxy/sniff/http-head.js';
import { sniffStream } from '../../../../src/proxy/sniff/sniff-stream.js';
import { captureClientHello, prng } from '../../../helpers/sniff-capture.js';

t.test('real ClientHellos: SNI and ALPN', async (t) => {
  const h = await captureClientHello({ servername: 'API.Example.com', ALPNProtocols: ['h2', 'http/1.1'] });
  t.same(sniffTlsClientHello(h), { kind: 'tls', sni: 'api.example.com', alpn: ['h2', 'http/1.1'] });
  const noName = await captureClientHello({ host: '192.0.2.1' });
  const r = sniffTlsClientHello(noName);
  t.equal(r.kind, 'tls');
  t.equal((r as { sni?: string }).sni, undefined, 'an IP address sends no SNI');
  const v12 = await captureClientHello({ servername: 'old.example', maxVersion: 'TLSv1.2' });
  t.match(sniffTlsClientHello(v12), { kind: 'tls', sni: 'old.example' });
});

t.test('every prefix needs more; the hello split over two records still parses', async (t) => {
  const h = await captureClientHello({ servername: 'split.example' });
  let wrong = 0;
  for (let i = 0; i < h.length; i++) if (sniffTlsClientHello(h.subarray(0, i)).kind !== 'need-more') wrong++;
  t.equal(wrong, 0, 'no prefix is decided early');
  const body = h.subarray(5, 5 + h.readUInt16BE(3));
  const cut = 60;
  const rec = (b: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, b.length >> 8, b.length & 0xff]), b]);
  const split = Buffer.concat([rec(body.subarray(0, cut)), rec(body.subarray(cut))]);
  t.match(sniffTlsClientHello(split), { kind: 'tls', sni: 'split.example' });
  t.equal(sniffTlsClientHello(split.subarray(0, 5 + cut + 3)).kind, 'need-more');
});

t.test('garbage and mutated hellos never throw', async (t) => {
  const h = await captureClientHello({ servername: 'fuzz.example', ALPNProtocols: ['h2'] });
  const rnd = prng(7);
  const next = () => (rnd() * 2 ** 32) >>> 0;
  const kinds = new Set(['tls', 'need-more', 'not-tls', 'unreadable']);
  const hkinds = new Set(['http', 'need-more', 'not-http']);
  let bad = 0;
  for (let i = 0; i < 50_000; i++) {
    const b = Buffer.allocUnsafe(next() % 600);
    for (let k = 0; k < b.length; k++) b[k] = next() & 0xff;
    if (i % 3 === 0 && b.length > 3) b.set([22, 3, 1]);
    if (!kinds.has(sniffTlsClientHello(b).kind) || !hkinds.has(sniffHttpHead(b).kind)) bad++;
  }
  for (let i = 0; i < 20_000; i++) {
    const m = Buffer.from(h.subarray(0, h.length - (next() % 8 === 0 ? next() % h.length : 0)));
    for (let k = next() % 6; k >= 0; k--) if (m.length) m[next() % m.length] = next() & 0xff;
    if (!kinds.has(sniffTlsClientHello(m).kind)) bad++;
  }
  t.equal(bad, 0, '70,000 inputs, every answer one of the three kinds');
});

t.test('HTTP heads', async (t) => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  t.same(sniffHttpHead(b('GET /a?b=1 HTTP/1.1\r\nAccept: */*\r\nHost: Example.COM\r\n\r\n')), { kind: 'http', method: 'GET', path: '/a?b=1', host: 'example.com', version: '1.1' });
  t.match(sniffHttpHead(b('POST / HTTP/1.1\r\nhost: a.example:8080\r\n\r\n')), { kind: 'http', host: 'a.example' }, 'decided once the head is complete');
  t.match(sniffHttpHead(b('GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n')), { host: '2001:db8::1' });
  t.match(sniffHttpHead(b('GET http://abs.example:81/x HTTP/1.1\r\nHost: other.example\r\n\r\n')), { kind: 'http', host: 'abs.example' });
  t.match(sniffHttpHead(b('GET / HTTP/1.0\r\n\r\n')), { kind: 'http', host: undefined, version: '1.0' });
  t.equal(sniffHttpHead(b('SSH-2.0-OpenSSH_9.2\r\n')).kind, 'not-http');
  t.equal(sniffHttpHead(b('\x16\x03\x01\x02\x00')).kind, 'not-http');
  t.equal(sniffHttpHead(b('get / HTTP/1.1\r\n\r\n')).kind, 'http', 'a lower-case method is HTTP to a server that takes it: the relay answers 400');
  t.equal(sniffHttpHead(b('PRI * HTTP/2.0\r\n')).kind, 'not-http');
  t.equal(sniffHttpHead(b('GET / HTTP/1.1\r\nAccept: x\r\n')).kind, 'need-more');
  const req = b('PUT /up HTTP/1.1\r\nUser-Agent: t\r\nHost: one.example\r\n\r\n');
  let early = 0;
  for (let i = 1; i < req.length; i++) if (sniffHttpHead(req.subarray(0, i)).kind !== 'need-more') early++;
  t.equal(early, 0, 'byte by byte: undecided until the head ends');
  t.match(sniffHttpHead(req), { kind: 'http', method: 'PUT', host: 'one.example' });
});

t.test('sniffStream puts the bytes back, and stops on timeout or when the server speaks first', async (t) => {
  const s1 = new PassThrough();
  s1.write('GET / HTTP/1.1\r\nHost: back.example\r\n\r\n');
  const r1 = await sniffStream(s1, 1000);
  t.match(r1, { protocol: 'http', host: 'back.example', by: 'verdict' });
  t.equal(String(s1.read()), 'GET / HTTP/1.1\r\nHost: back.example\r\n\r\n', 'the same bytes are read next');

  const s2 = new PassThrough();
  s2.write('SSH-2.0-OpenSSH_9.6\r\n');
  const t0 = Date.now();
  const r2 = await sniffStream(s2, 100);
  t.match(r2, { protocol: 'tcp', by: 'verdict' }, 'a banner is opaque at once');
  t.ok(Date.now() - t0 < 100);

  const s3 = new PassThrough();
  const r3 = await sniffStream(s3, 80);
  t.match(r3, { protocol: 'unknown', by: 'timeout' }, 'a silent client is unknown, not opaque: rules can refuse it');

  const s4 = new PassThrough();
  const server = new PassThrough();
  setTimeout(() => server.write('220 smtp.example ESMTP\r\n'), 10);
  t.match(await sniffStream(s4, 5000, server), { protocol: 'tcp', by: 'aborted' }, 'the server spoke first: not HTTP, not TLS');
  t.equal(server.listenerCount('readable'), 0, 'and its listener is gone');
  const quiet = new PassThrough();
  const q = new PassThrough();
  q.write('GET / HTTP/1.1\r\n\r\n');
  await sniffStream(q, 5000, quiet);
  t.equal(quiet.listenerCount('readable'), 0, 'a verdict takes the listener off the server too');

  const s5 = new PassThrough();
  s5.end('GE');
  const r5 = await sniffStream(s5, 1000);
  t.match(r5, { protocol: 'unknown', by: 'end' });
  const rest: Buffer[] = [];
  for await (const c of s5) rest.push(c as Buffer);
  t.equal(Buffer.concat(rest).toString(), 'GE', 'bytes before a FIN still arrive, then the end');
});

t.test('what the budget leaves undecided is unknown, never opaque TCP', async (t) => {
  // a request line sent slowly: the name rule must not be walked around by waiting
  const slow = new PassThrough();
  slow.write('GET / HT');
  t.match(await sniffStream(slow, 60), { protocol: 'unknown', by: 'timeout' });
  // the request line is in, the headers are not: HTTP (the relay reads the rest, request by request)
  const head = new PassThrough();
  head.write('GET / HTTP/1.1\r\nHost: slow.example\r\nX-A: ');
  t.match(await sniffStream(head, 60), { protocol: 'http', host: 'slow.example', by: 'timeout' });
  // a ClientHello cut short
  const hello = await captureClientHello({ servername: 'cut.example' });
  const cut = new PassThrough();
  cut.write(hello.subarray(0, 40));
  t.match(await sniffStream(cut, 60), { protocol: 'unknown', by: 'timeout' });
  // a hello whose name cannot be read is unknown at once
  const bad = Buffer.from(hello);
  const at = bad.indexOf(Buffer.from('cut.example'));
  bad[at + 3] = 0x20;
  const u = new PassThrough();
  u.write(bad);
  t.match(await sniffStream(u, 1000), { protocol: 'unknown', by: 'verdict', unreadable: 'server name is not a DNS name' });
  // the HTTP/2 preface (h2c with prior knowledge): opaque, and said so
  const h2 = new PassThrough();
  h2.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  t.match(await sniffStream(h2, 1000), { protocol: 'tcp', h2c: true, by: 'verdict' });
});

t.test('firstRead: the first bytes decide, a short message never waits out the timeout', async (t) => {
  // "x" could still begin a method token: without firstRead it waits for the budget
  const short = new PassThrough();
  short.write('x');
  const t0 = Date.now();
  t.match(await sniffStream(short, 5000, undefined, true), { protocol: 'unknown', by: 'first-read' });
  t.ok(Date.now() - t0 < 1000, 'decided at once, not after the 5 s budget');
  t.equal(String(short.read()), 'x', 'the byte is put back');
  // a request line without its headers yet is still HTTP, read request by request after
  const head = new PassThrough();
  head.write('GET / HTTP/1.1\r\nHost: first.example\r\nX-A: ');
  t.match(await sniffStream(head, 5000, undefined, true), { protocol: 'http', host: 'first.example', by: 'first-read' });
  // a whole head is a verdict as before
  const whole = new PassThrough();
  whole.write('GET / HTTP/1.1\r\nHost: whole.example\r\n\r\n');
  t.match(await sniffStream(whole, 5000, undefined, true), { protocol: 'http', host: 'whole.example', by: 'verdict' });
  // and without firstRead the same "x" still waits (the budget, here 60 ms)
  const waits = new PassThrough();
  waits.write('x');
  t.match(await sniffStream(waits, 60), { protocol: 'unknown', by: 'timeout' });
});
