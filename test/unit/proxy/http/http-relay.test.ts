// The HTTP relay on loopback sockets: raw client bytes in, what a Node HTTP
// server behind it saw out. One reading of the stream: every request the
// server gets was read (and decided) by the relay, in canonical form; what
// the relay cannot read is answered 400; an Upgrade or CONNECT the server does
// not accept leaves the stream HTTP.
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { relayHttp, type HttpRelayOptions } from '../../../../src/proxy/http/http-relay.js';
import type { HttpExchange, HttpRequestInfo, RequestVerdict } from '../../../../src/proxy/http/http-forward.js';

interface Seen {
  method: string;
  url: string;
  host?: string;
  headers: string[];
}

/** A Node HTTP server that answers each request with what it saw; `upgrade`: answer 101 to Upgrade. */
async function origin(upgrade: 'accept' | 'refuse' = 'refuse'): Promise<{ port: number; seen: Seen[]; close: () => void }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const s: Seen = { method: req.method!, url: req.url!, host: req.headers.host, headers: req.rawHeaders };
    seen.push(s);
    req.resume();
    req.on('end', () => res.end(JSON.stringify(s)));
  });
  server.on('upgrade', (req, socket: net.Socket) => {
    seen.push({ method: req.method!, url: req.url!, host: req.headers.host, headers: req.rawHeaders });
    if (upgrade === 'accept') {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.on('data', (d) => socket.write(`echo:${d.toString('latin1')}`));
      socket.on('end', () => socket.end());
    } else {
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nno');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, seen, close: () => server.close() };
}

const allow = (info: HttpRequestInfo): RequestVerdict =>
  info.host === 'blocked.example' ? { rule: 'r0', action: 'reject', edits: [], refuse: { status: 403, body: 'blocked\n' } } : { rule: 'default', action: 'direct', edits: [] };

/** Sends raw bytes through the relay to a fresh origin; returns what the client got and what the origin saw. */
async function through(
  raw: string | Buffer,
  o: { decide?: HttpRelayOptions['decide']; upgrade?: 'accept' | 'refuse'; then?: (c: net.Socket) => void; endAfterMs?: number; quiet?: HttpRelayOptions['quiet'] } = {},
): Promise<{ got: string; seen: Seen[]; exchanges: HttpExchange[]; end: string }> {
  const org = await origin(o.upgrade);
  const exchanges: HttpExchange[] = [];
  let ended: Promise<{ end: string }> = Promise.resolve({ end: 'none' });
  const front = net.createServer({ allowHalfOpen: true }, (clientSide) => {
    const upstream = net.connect({ port: org.port, host: '127.0.0.1', allowHalfOpen: true });
    ended = relayHttp(clientSide, upstream, { decide: o.decide ?? allow, onExchange: (e) => exchanges.push(e), quiet: o.quiet });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const c = net.connect({ port: (front.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  c.on('data', (d) => chunks.push(d));
  c.write(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw);
  o.then?.(c);
  const closeTimer = setTimeout(() => c.end(), o.endAfterMs ?? 400);
  // bounded: a relay that never closes fails the test in seconds, not at tap's timeout
  const killTimer = setTimeout(() => c.destroy(), 5000);
  await new Promise<void>((r) => {
    c.on('close', () => r());
    c.on('error', () => r());
  });
  clearTimeout(closeTimer);
  clearTimeout(killTimer);
  const end = (await ended).end;
  front.close();
  org.close();
  return { got: Buffer.concat(chunks).toString('latin1'), seen: org.seen, exchanges, end };
}

const statuses = (got: string) => [...got.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

t.test('bare LF, mixed line ends and leading empty lines are read, decided, and sent on in CRLF', async (t) => {
  for (const raw of [
    'GET /a HTTP/1.1\nHost: ok.example\nConnection: close\n\n',
    'GET /a HTTP/1.1\r\nHost: ok.example\nConnection: close\r\n\n',
    '\r\n\nGET /a HTTP/1.1\r\nHost: ok.example\r\nConnection: close\r\n\r\n',
  ]) {
    const r = await through(raw);
    t.same(statuses(r.got), [200], JSON.stringify(raw));
    t.match(r.seen, [{ method: 'GET', url: '/a', host: 'ok.example' }]);
  }
  const blocked = await through('GET / HTTP/1.1\nHost: blocked.example\n\n');
  t.same(statuses(blocked.got), [403], 'the reject rule holds for bare LF');
  t.same(blocked.seen, [], 'the server saw nothing');
});

t.test('what a server could read another way is answered 400, and the server sees nothing', async (t) => {
  const cases: [string, string][] = [
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: ok.example\r\nHost: blocked.example\r\n\r\n'],
    ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['host:port:port', 'GET / HTTP/1.1\r\nHost: blocked.example:80:80\r\n\r\n'],
    ['%-encoded host', 'GET / HTTP/1.1\r\nHost: blocked%2eexample\r\n\r\n'],
    ['userinfo in the target', 'GET http://x@blocked.example/ HTTP/1.1\r\nHost: ok.example\r\n\r\n'],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : blocked.example\r\nHost: ok.example\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: ok.example\r\nX-A: a\r\n b\r\n\r\n'],
    ['Content-Length with Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: ok.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['two Content-Lengths', 'POST / HTTP/1.1\r\nHost: ok.example\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['lower-case method', 'get / HTTP/1.1\r\nHost: ok.example\r\n\r\n'],
    ['unknown method', 'FOO / HTTP/1.1\r\nHost: ok.example\r\n\r\n'],
    ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: ok.example\r\n\r\n'],
    ['bare CR in a header value', 'GET / HTTP/1.1\r\nHost: ok.example\r\nX: a\rHost: blocked.example\r\n\r\n'],
  ];
  for (const [name, raw] of cases) {
    const r = await through(raw);
    t.same(statuses(r.got), [400], `${name}: 400`);
    t.same(r.seen, [], `${name}: the server saw nothing`);
    t.equal(r.end, 'bad-request', `${name}: logged as a bad request`);
  }
});

t.test('absolute-form: the rule sees the URI authority, and so does the server (Host replaced)', async (t) => {
  const r = await through('GET HTTP://OK.Example/x HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n');
  t.same(statuses(r.got), [200]);
  t.match(r.seen, [{ host: 'ok.example', url: 'HTTP://OK.Example/x' }]);
  t.equal(r.seen[0].headers.filter((h) => h.toLowerCase() === 'host').length, 1, 'one Host');
  const b = await through('GET http://blocked.example/ HTTP/1.1\r\nHost: ok.example\r\n\r\n');
  t.same(statuses(b.got), [403], 'the reject rule applies to the URI host');
  t.same(b.seen, []);
});

t.test('pipelined: only the blocked request is refused, after the answers before it', async (t) => {
  const r = await through('GET /1 HTTP/1.1\r\nHost: ok.example\r\n\r\nGET /2 HTTP/1.1\nHost: blocked.example\n\nGET /3 HTTP/1.1\r\nHost: ok.example\r\n\r\n');
  t.same(statuses(r.got), [200, 403]);
  t.same(
    r.seen.map((s) => s.url),
    ['/1'],
    'the blocked one and everything after it never reached the server',
  );
  t.equal(r.end, 'rejected');
});

t.test('a verdict that takes time holds the requests behind it, in order', async (t) => {
  let n = 0;
  const slow = (info: HttpRequestInfo) => {
    const v = allow(info);
    // the first request's verdict arrives last
    return n++ === 0 ? new Promise<RequestVerdict>((r) => setTimeout(() => r({ ...v, edits: [{ op: 'set', name: 'X-Checked', value: 'yes' }] }), 100)) : v;
  };
  const body = 'x'.repeat(3000);
  const r = await through(`POST /1 HTTP/1.1\r\nHost: ok.example\r\nContent-Length: ${body.length}\r\n\r\n${body}GET /2 HTTP/1.1\r\nHost: ok.example\r\nConnection: close\r\n\r\n`, {
    decide: slow,
  });
  t.same(statuses(r.got), [200, 200]);
  t.same(
    r.seen.map((s) => s.url),
    ['/1', '/2'],
  );
  t.ok(r.seen[0].headers.includes('X-Checked'), 'the late verdict applied to its own request');
});

t.test('header edits: any case, and "_" for "-" (CGI reads both as one variable)', async (t) => {
  const edit = (): RequestVerdict => ({
    rule: 'r',
    action: 'set-header',
    edits: [
      { op: 'remove', name: 'X-User' },
      { op: 'set', name: 'Authorization', value: 'Bearer t' },
    ],
  });
  const r = await through('GET / HTTP/1.1\r\nHost: ok.example\r\nx-user: a\r\nX_User: b\r\nAUTHORIZATION: mine\r\nConnection: close\r\n\r\n', { decide: edit });
  const h = r.seen[0].headers;
  t.notOk(
    h.some((x) => /^x[-_]user$/i.test(x)),
    'every spelling of X-User removed',
  );
  t.same(h.filter((_x, i) => i % 2 === 0 && /^authorization$/i.test(h[i])).length, 1, 'one Authorization');
  t.ok(h.includes('Bearer t'));
});

t.test('Upgrade: raw only after a 101; a server that ignores it gets the next requests parsed and decided', async (t) => {
  const up = 'GET /ws HTTP/1.1\r\nHost: ok.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
  const accepted = await through(up, { upgrade: 'accept', then: (c) => setTimeout(() => c.write('frame'), 100) });
  t.match(accepted.got, /^HTTP\/1\.1 101/);
  t.match(accepted.got, /echo:frame/, 'bytes after the 101 pass raw both ways');
  // the server answers 200 and keeps the connection: the smuggled request is read as a request and refused
  const smuggled = await through(`${up}GET /secret HTTP/1.1\r\nHost: blocked.example\r\n\r\n`, { upgrade: 'refuse' });
  t.same(statuses(smuggled.got), [200, 403]);
  t.same(
    smuggled.seen.map((s) => s.url),
    ['/ws'],
    'the request after an unaccepted Upgrade never reached the server unseen',
  );
  // h2c upgrade is taken out: HTTP/2 streams after a 101 would pass no rule
  const h2c = await through(
    'GET / HTTP/1.1\r\nHost: ok.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\nGET /next HTTP/1.1\r\nHost: ok.example\r\nConnection: close\r\n\r\n',
  );
  t.same(statuses(h2c.got), [200, 200]);
  t.notOk(
    h2c.seen[0].headers.some((h) => /^(upgrade|http2-settings)$/i.test(h)),
    'no h2c upgrade reached the server',
  );
  t.same(
    h2c.seen.map((s) => s.url),
    ['/', '/next'],
  );
});

t.test('chunked bodies are read and sent on re-chunked; bare LF chunk lines too', async (t) => {
  const r = await through('POST /c HTTP/1.1\r\nHost: ok.example\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\nabc\n0\r\n\r\n');
  t.same(statuses(r.got), [200]);
  t.match(r.seen, [{ url: '/c' }]);
});

/**
 * A client side that records, per event-loop turn, what the relay did to it:
 * the response's last bytes and the end should come in the same turn when the
 * server closes after the response, so the TUN sends them as one segment.
 */
async function lastResponse(serverClosesAfterMs: number | null): Promise<{ log: string[]; got: string }> {
  const { Duplex } = await import('node:stream');
  let turn = 0;
  let spinning = true;
  const spin = () => {
    turn++;
    if (spinning) setImmediate(spin);
  };
  setImmediate(spin);
  const log: string[] = [];
  const got: Buffer[] = [];
  const response = 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello';
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.once('data', () => {
      s.write(response);
      if (serverClosesAfterMs !== null) setTimeout(() => s.end(), serverClosesAfterMs);
      else setTimeout(() => s.destroy(), 300);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = new Duplex({
    allowHalfOpen: true,
    read() {},
    write(chunk: Buffer, _e, cb) {
      log.push(`write@${turn}`);
      got.push(chunk);
      cb();
    },
    final(cb) {
      log.push(`end@${turn}`);
      cb();
    },
  });
  const upstream = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const ended = relayHttp(client, upstream, { decide: allow, onExchange: () => {} });
  client.push('GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
  await new Promise((r) => setTimeout(r, serverClosesAfterMs === null ? 100 : serverClosesAfterMs + 50));
  client.push(null);
  upstream.on('close', () => client.destroy());
  await ended;
  spinning = false;
  server.close();
  return { log, got: Buffer.concat(got).toString('latin1') };
}

t.test('the last response (the server closes after it) goes to the client with the end, in one turn', async (t) => {
  const { log, got } = await lastResponse(1);
  t.equal(got.slice(-5), 'hello');
  t.equal(log.length, 2, `one write and the end: ${log}`);
  t.equal(log[0].split('@')[1], log[1].split('@')[1], `the same turn: ${log}`);
});

t.test('a server that does not close after its last response: the response still goes on, after a few ms', async (t) => {
  const { log, got } = await lastResponse(null);
  t.equal(got.slice(-5), 'hello', 'delivered although no FIN came');
  t.ok(log[0].startsWith('write'), `${log}`);
});

t.test('quiet: an exchange whose line is not written is only counted, its fields not built', async (t) => {
  let logged = false;
  let counted = 0;
  const quiet = { now: () => !logged, count: () => void counted++ };
  const two = 'GET /a HTTP/1.1\r\nHost: ok.example\r\n\r\nGET /b HTTP/1.1\r\nHost: ok.example\r\nConnection: close\r\n\r\n';
  const r = await through(two, { quiet });
  t.same(statuses(r.got), [200, 200], 'both requests answered');
  t.equal(counted, 2, 'both counted');
  t.same(r.exchanges, [], 'no fields built');
  logged = true;
  const r2 = await through(two, { quiet });
  t.equal(r2.exchanges.length, 2, 'with the level on, each exchange is built and told');
  t.equal(counted, 2, 'and not counted twice');
});
