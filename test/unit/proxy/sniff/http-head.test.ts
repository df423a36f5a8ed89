import t from 'tap';
import http from 'node:http';
import type net from 'node:net';
import { sniffHttpHead, type HttpSniff } from '../../../../src/proxy/sniff/http-head.js';
import { captureClientHello, prng, randInt, randomBytes, sink } from '../../../helpers/sniff-capture.js';

// ---- helpers -------------------------------------------------------------

/** The request head Node's own HTTP client writes. */
async function captureRequest(opts: http.RequestOptions): Promise<Buffer> {
  const { raw, written } = sink();
  const req = http.request({ ...opts, createConnection: () => raw as unknown as net.Socket });
  req.on('error', () => {});
  req.end();
  await new Promise((r) => setImmediate(r));
  req.destroy();
  raw.destroy();
  return written();
}

const sniff = (s: string | Buffer) => sniffHttpHead(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);

const KINDS = new Set(['http', 'need-more', 'not-http']);
const HOST_RE = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;
/** Why a result is not well-formed, or '' when it is. */
function shapeError(r: HttpSniff): string {
  if (!KINDS.has(r.kind)) return `kind ${String(r.kind)}`;
  const keys = Object.keys(r);
  if (r.kind !== 'http') return keys.length === 1 ? '' : `extra keys ${keys}`;
  if (keys.some((k) => !['kind', 'method', 'path', 'host', 'version'].includes(k))) return `extra keys ${keys}`;
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/.test(r.method)) return `bad method ${JSON.stringify(r.method)}`;
  if (typeof r.path !== 'string' || r.path.length === 0 || /[ \t\r\n]/.test(r.path)) return `bad path ${JSON.stringify(r.path)}`;
  if (typeof r.version !== 'string' || /[\r\n]/.test(r.version)) return `bad version ${String(r.version)}`;
  if ('host' in r && (typeof r.host !== 'string' || !(HOST_RE.test(r.host) || /^[0-9a-f:.]+$/.test(r.host)))) return `bad host ${JSON.stringify(r.host)}`;
  return '';
}

const realRequest = await captureRequest({
  host: 'api.example.com',
  port: 8080,
  path: '/v1/items?x=1',
  headers: { 'user-agent': 'sniff-test', accept: '*/*' },
});
const realHello = await captureClientHello({ servername: 'api.example.com' });

// ---- requests ----------------------------------------------------------------

t.test('GET with Host', async (t) => {
  t.strictSame(sniff('GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nAccept: */*\r\n\r\n'), {
    kind: 'http',
    method: 'GET',
    path: '/index.html',
    version: '1.1',
    host: 'www.example.com',
  });
  t.strictSame(
    sniff('POST /api HTTP/1.1\r\nHost: Example.COM:8443\r\nContent-Length: 2\r\n\r\n{}'),
    {
      kind: 'http',
      method: 'POST',
      path: '/api',
      version: '1.1',
      host: 'example.com',
    },
    'port stripped, lower-cased',
  );
  t.strictSame(sniff('GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n'), { kind: 'http', method: 'GET', path: '/', version: '1.1', host: '::1' }, 'IPv6 with port');
  t.equal((sniff('GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n') as { host?: string }).host, '2001:db8::1', 'IPv6 without port, lower-cased');
  t.equal((sniff('GET / HTTP/1.1\r\nHost: 192.0.2.10:80\r\n\r\n') as { host?: string }).host, '192.0.2.10', 'IPv4 with port');
  t.equal((sniff('GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n') as { host?: string }).host, 'example.com', 'trailing dot');
  t.equal((sniff('GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n') as { host?: string }).host, 'example.com', 'empty port');
});

t.test('Host header spelling', async (t) => {
  const host = (head: string) => {
    const r = sniff(head);
    return r.kind === 'http' ? r.host : r.kind;
  };
  t.equal(host('GET / HTTP/1.1\r\nhost: lower.example\r\n\r\n'), 'lower.example', 'lowercase name');
  t.equal(host('GET / HTTP/1.1\r\nHOST: upper.example\r\n\r\n'), 'upper.example', 'uppercase name');
  t.equal(host('GET / HTTP/1.1\r\nHost:\t  ws.example \t\r\n\r\n'), 'ws.example', 'optional whitespace');
  t.equal(host('GET / HTTP/1.1\r\nHost:nows.example\r\n\r\n'), 'nows.example', 'no whitespace');
  t.equal(host('GET / HTTP/1.1\r\nX-Host: no.example\r\nHost-Name: no.example\r\nHost: yes.example\r\n\r\n'), 'yes.example', 'similar names are not Host');
  t.equal(host('GET / HTTP/1.0\r\nHost : no.example\r\n\r\n'), undefined, 'space before the colon is not a Host header (the relay answers 400)');
  t.equal(host('GET / HTTP/1.1\r\nHost: first.example\r\nHost: second.example\r\n\r\n'), undefined, 'two Hosts: none (the relay answers 400, as nginx does)');
  t.equal(host('GET / HTTP/1.1\nHOST: lf.example\n\n'), 'lf.example', 'bare LF line ends');
  t.equal(host('GET / HTTP/1.1\r\nX: 1\nHost: mixed.example\r\n\n'), 'mixed.example', 'mixed line ends');
  for (const bad of [
    'exa mple.com',
    'example.com:80x',
    'example.com:123456',
    'example.com:80:80',
    'a%2eexample',
    '[::1',
    '[not-v6]:80',
    'a..b',
    'b\xfccher.de',
    '',
    'user@host',
    '2001:db8::1',
  ]) {
    const r = sniff(`GET / HTTP/1.1\r\nHost: ${bad}\r\n\r\n`);
    t.ok(r.kind === 'http' && !('host' in r), `invalid Host ${JSON.stringify(bad)}: HTTP without a host`);
  }
});

t.test('request-target forms', async (t) => {
  t.strictSame(
    sniff('GET http://Proxy.Example:8080/a/b?c=d HTTP/1.0\r\nAccept: */*\r\n\r\n'),
    {
      kind: 'http',
      method: 'GET',
      path: '/a/b?c=d',
      version: '1.0',
      host: 'proxy.example',
    },
    'absolute-form without Host (HTTP/1.0)',
  );
  t.strictSame(
    sniff('GET http://a.example/ HTTP/1.1\r\n\r\n'),
    { kind: 'http', method: 'GET', path: 'http://a.example/', version: '1.1' },
    'HTTP/1.1 without Host: none (400, as nginx)',
  );
  t.strictSame(sniff('GET http://[::1]:8080 HTTP/1.0\r\n\r\n'), { kind: 'http', method: 'GET', path: '/', version: '1.0', host: '::1' }, 'IPv6, empty path');
  t.strictSame(
    sniff('GET http://user:pw@a.example/ HTTP/1.0\r\n\r\n'),
    { kind: 'http', method: 'GET', path: 'http://user:pw@a.example/', version: '1.0' },
    'userinfo: none (400, as nginx)',
  );
  t.equal(
    (sniff('GET http://url.example/ HTTP/1.1\r\nHost: header.example\r\n\r\n') as { host?: string }).host,
    'url.example',
    'the URI wins over Host (RFC 9112 §3.2.2), as nginx reads it',
  );
  t.equal((sniff('GET HTTPS://URL.Example/ HTTP/1.1\r\nHost: header.example\r\n\r\n') as { host?: string }).host, 'url.example', 'any scheme, any case');
  t.equal((sniff('GET http://url.example/ HTTP/1.1\r\nHost: bad host\r\n\r\n') as { host?: string }).host, undefined, 'an invalid Host header: none (400)');
  t.equal(sniff('GET http://url.example/ HTTP/1.1\r\nAccept: */*\r\n').kind, 'need-more', 'a Host header may still come');
  t.strictSame(
    sniff('CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n'),
    { kind: 'http', method: 'CONNECT', path: 'tunnel.example:443', version: '1.1', host: 'tunnel.example' },
    'authority-form',
  );
  t.strictSame(sniff('OPTIONS * HTTP/1.1\r\nHost: o.example\r\n\r\n'), { kind: 'http', method: 'OPTIONS', path: '*', version: '1.1', host: 'o.example' });
  t.strictSame(sniff('PROPFIND /dav/ HTTP/1.1\r\nHost: dav.example\r\n\r\n'), { kind: 'http', method: 'PROPFIND', path: '/dav/', version: '1.1', host: 'dav.example' });
});

t.test('no Host (HTTP/1.0)', async (t) => {
  t.strictSame(sniff('GET / HTTP/1.0\r\n\r\n'), { kind: 'http', method: 'GET', path: '/', version: '1.0' });
  t.strictSame(sniff('HEAD /x HTTP/1.0\r\nUser-Agent: old\r\n\r\n'), { kind: 'http', method: 'HEAD', path: '/x', version: '1.0' });
});

t.test('incomplete heads need more', async (t) => {
  for (const s of [
    '',
    '\r\n',
    'G',
    'GET',
    'GET ',
    'GET /',
    'GET / ',
    'GET / HTTP/1.',
    'GET / HTTP/1.1',
    'GET / HTTP/1.1\r',
    'GET / HTTP/1.1\r\n',
    'GET / HTTP/1.1\r\nAccept: */*\r\n',
    'GET / HTTP/1.1\r\nHost: a.example',
    'GET / HTTP/1.1\r\nHost: a.example\r',
    'GET / HTTP/1.1\r\nHost: a.example\r\n',
    'GET / HTTP/1.0\r\n\r',
  ]) {
    t.equal(sniff(s).kind, 'need-more', JSON.stringify(s));
  }
  // a second Host may still come: the verdict waits for the empty line
  t.strictSame(sniff('GET / HTTP/1.1\r\nHost: a.example\r\n\r\n'), { kind: 'http', method: 'GET', path: '/', version: '1.1', host: 'a.example' });
  // when the budget is spent, a request line is enough to call it HTTP (the relay reads the rest)
  t.strictSame(sniffHttpHead(Buffer.from('GET / HTTP/1.1\r\nHost: a.example\r\n'), true), { kind: 'http', method: 'GET', path: '/', version: '1.1', host: 'a.example' });
  t.strictSame(sniffHttpHead(Buffer.from('GET http://abs.example/ HTTP/1.1\r\nAccept: *'), true), { kind: 'http', method: 'GET', path: '/', version: '1.1', host: 'abs.example' });
  t.equal(sniffHttpHead(Buffer.from('GET / HTTP/1.1\r'), true).kind, 'http');
  t.equal(sniffHttpHead(Buffer.from('GET / HTT'), true).kind, 'need-more', 'not even a request line: undecided (unknown to the caller)');
});

t.test('not HTTP, decided early', async (t) => {
  const ssh = 'SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n';
  t.equal(sniff(ssh).kind, 'not-http', 'SSH banner');
  t.equal(sniff('SSH-2.0-OpenSSH_9.6\r\n').kind, 'not-http', 'SSH banner without comment');
  t.equal(sniff('SSH-').kind, 'need-more', '"SSH-" could still be a method token');
  t.equal(sniff(realHello).kind, 'not-http', 'a real TLS ClientHello');
  t.equal(sniff(realHello.subarray(0, 1)).kind, 'not-http', 'its first byte alone');
  for (const first of [0x00, 0x05, 0x16, 0x80, 0xff, 0x20, 0x2f /* / */, 0x3a /* : */]) {
    t.equal(sniff(Buffer.from([first])).kind, 'not-http', `first byte 0x${first.toString(16)}`);
  }
  const cases: [string, string][] = [
    ['21-letter method', `${'A'.repeat(21)} / HTTP/1.1\r\n\r\n`],
    ['SMTP-like line', 'EHLO mail.example\r\n'],
    ['HTTP/0.9 (no Host to read: opaque, tcp)', 'GET /\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['REDIS inline command', 'PING\r\n'],
    ['three words, not HTTP', 'SET key value\r\n'],
    ['leading space (nginx: 400)', ' GET / HTTP/1.1\r\n\r\n'],
  ];
  for (const [name, s] of cases) t.equal(sniff(s).kind, 'not-http', name);
  t.equal(sniff(`${'A'.repeat(20)} / HTTP/1.1\r\n\r\n`).kind, 'http', '20-letter method is fine');
  t.equal(sniff('EHLO').kind, 'need-more', 'a prefix of the SMTP line is undecided');
});

t.test('what a server might take as HTTP is HTTP here: the relay reads it or answers 400', async (t) => {
  const cases: [string, string, string | undefined][] = [
    ['bare LF (nginx serves it)', 'GET / HTTP/1.1\nHost: a.example\n\n', 'a.example'],
    ['leading empty lines (RFC 9112 §2.2)', '\r\n\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['lowercase method (Go takes it)', 'get / HTTP/1.1\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['any token method (nginx: FOO)', 'FOO / HTTP/1.1\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['method with a digit', 'GET2 / HTTP/1.1\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['HTTP/1.2 (nginx serves it)', 'GET / HTTP/1.2\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['lowercase version', 'GET / http/1.1\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['two spaces (nginx serves it)', 'GET  /  HTTP/1.1\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['tabs as separators', 'GET\t/\tHTTP/1.1\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['control byte in target', 'GET /a\x01b HTTP/1.1\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['trailing text on the request line', 'GET / HTTP/1.1 x\r\nHost: a.example\r\n\r\n', 'a.example'],
    ['request line ended by a bare CR', 'GET / HTTP/1.1\rHost: a.example\r\n\r\n', 'a.example'],
  ];
  for (const [name, s, host] of cases) {
    const r = sniff(s);
    t.equal(r.kind, 'http', name);
    t.equal((r as { host?: string }).host, host, `${name}: host`);
  }
});

t.test('the 16 KiB bound', async (t) => {
  const filler = Array.from({ length: 400 }, (_, i) => `X-Filler-${i}: ${'v'.repeat(40)}\r\n`).join('');
  const longNoHost = `GET /big HTTP/1.1\r\n${filler}`;
  t.ok(longNoHost.length > 16 * 1024);
  t.strictSame(sniff(longNoHost), { kind: 'http', method: 'GET', path: '/big', version: '1.1' }, 'over the bound without a blank line: HTTP, no host');
  t.equal(sniff(longNoHost.slice(0, 16 * 1024 - 1)).kind, 'need-more', 'just under the bound: still waiting');
  const hostAfter = `GET /big HTTP/1.1\r\n${filler}Host: late.example\r\n\r\n`;
  t.strictSame(sniff(hostAfter), { kind: 'http', method: 'GET', path: '/big', version: '1.1' }, 'a Host header past the bound is not seen');
  const hostBefore = `GET /big HTTP/1.1\r\nHost: early.example\r\n${filler}\r\n`;
  t.equal((sniff(hostBefore) as { host?: string }).host, 'early.example');
  const longAbsolute = `GET http://abs.example/ HTTP/1.1\r\n${filler}`;
  t.equal((sniff(longAbsolute) as { host?: string }).host, 'abs.example', 'absolute-form host survives the bound');
  const hugeTarget = `GET /${'a'.repeat(17000)} HTTP/1.1\r\nHost: x.example\r\n\r\n`;
  t.equal(sniff(hugeTarget).kind, 'need-more', 'a request line that does not fit: undecided (unknown once the budget is spent)');
  t.equal(sniff(hugeTarget.slice(0, 10000)).kind, 'need-more');
});

t.test('a real request from Node, one byte at a time', async (t) => {
  const text = realRequest.toString('latin1');
  t.match(text, /^GET \/v1\/items\?x=1 HTTP\/1\.1\r\n/, 'fixture is a request head');
  const want = { kind: 'http', method: 'GET', path: '/v1/items?x=1', version: '1.1', host: 'api.example.com' };
  t.strictSame(sniffHttpHead(realRequest), want);
  // the verdict comes with the empty line that ends the head, and not before
  const hostLineEnd = text.indexOf('\r\n\r\n') + 4;
  t.ok(hostLineEnd > 4 && hostLineEnd <= text.length);
  const early: number[] = [];
  const wrong: number[] = [];
  for (let n = 0; n <= realRequest.length; n++) {
    // a fresh copy each time, as a stream would deliver it
    const r = sniffHttpHead(Buffer.from(realRequest.subarray(0, n)));
    if (n < hostLineEnd && r.kind !== 'need-more') early.push(n);
    if (n >= hostLineEnd && JSON.stringify(r) !== JSON.stringify(want)) wrong.push(n);
  }
  t.strictSame(early, [], 'need-more until the head ends');
  t.strictSame(wrong, [], 'the same answer from then on');
});

// ---- fuzz ----------------------------------------------------------------

const ALPHABET = Buffer.from('GETPOSHADLCNIR /:.-_?=&%\r\n\r\nHhOoSsTt0123456789[]@\tHTTP/1.1 Host: example.com\x00\xff');
const HOSTISH = 'abcXYZ019.-_:[]@ \t';
function httpish(rnd: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = ALPHABET[(rnd() * ALPHABET.length) | 0];
  return b;
}

t.test('100,000 random buffers', async (t) => {
  const rnd = prng(0xbeef);
  const lines = ['GET / HTTP/1.1\r\n', 'POST http://a.example:81/x HTTP/1.0\r\n', 'CONNECT b.example:443 HTTP/1.1\r\n', 'GET / HTTP/1.1\r\nHost: '];
  let thrown = 0;
  const malformed: string[] = [];
  const unstable: string[] = [];
  const kinds: Record<string, number> = { http: 0, 'need-more': 0, 'not-http': 0 };
  let withHost = 0;
  for (let i = 0; i < 100_000; i++) {
    const n = randInt(rnd, 0, 600);
    let b: Buffer;
    const style = i % 4;
    if (style === 0) b = randomBytes(rnd, n);
    else if (style === 1) b = httpish(rnd, n);
    else {
      let line = lines[randInt(rnd, 0, lines.length - 1)];
      // a host-like value so the Host parsing paths are reached
      if (line.endsWith('Host: ') && rnd() < 0.7) {
        for (let k = randInt(rnd, 1, 14); k > 0; k--) line += HOSTISH[randInt(rnd, 0, HOSTISH.length - 1)];
        if (rnd() < 0.8) line += '\r\n';
      }
      b = Buffer.concat([Buffer.from(line, 'latin1'), style === 2 ? httpish(rnd, n) : randomBytes(rnd, n)]);
    }
    try {
      const r = sniffHttpHead(b);
      kinds[r.kind]++;
      if (r.kind === 'http' && r.host !== undefined) withHost++;
      const e = shapeError(r);
      if (e && malformed.length < 5) malformed.push(`${e} from ${JSON.stringify(b.toString('latin1'))}`);
      if (i % 8 === 0) {
        const cut = randInt(rnd, 0, b.length);
        const p = sniffHttpHead(b.subarray(0, cut));
        if (p.kind !== 'need-more' && JSON.stringify(p) !== JSON.stringify(r) && unstable.length < 5) unstable.push(`${JSON.stringify(b.toString('latin1'))} at ${cut}`);
      }
    } catch {
      thrown++;
    }
  }
  t.equal(thrown, 0, 'never throws');
  t.strictSame(malformed, [], 'always a well-formed answer');
  t.strictSame(unstable, [], 'verdicts are stable as data arrives');
  t.ok(kinds.http > 1000 && kinds['need-more'] > 1000 && kinds['not-http'] > 1000, `all kinds seen: ${JSON.stringify(kinds)}`);
  t.ok(withHost > 100, `some hosts found (${withHost})`);
});

t.test('20,000 mutations of a real request', async (t) => {
  const rnd = prng(0xfeed);
  const base = realRequest;
  let thrown = 0;
  const malformed: string[] = [];
  const unstable: string[] = [];
  const kinds: Record<string, number> = { http: 0, 'need-more': 0, 'not-http': 0 };
  for (let i = 0; i < 20_000; i++) {
    const wide = Buffer.concat([base, httpish(rnd, 64)]);
    let len = base.length;
    const op = randInt(rnd, 0, 3);
    if (op === 0 || op === 2) {
      for (let k = randInt(rnd, 1, 6); k > 0; k--) wide[randInt(rnd, 0, len - 1)] = rnd() < 0.5 ? ALPHABET[randInt(rnd, 0, ALPHABET.length - 1)] : randInt(rnd, 0, 255);
    }
    if (op === 1 || op === 2) len = randInt(rnd, 0, len);
    if (op === 3) len = randInt(rnd, len, wide.length);
    const b = wide.subarray(0, len);
    try {
      const r = sniffHttpHead(b);
      kinds[r.kind]++;
      const e = shapeError(r);
      if (e && malformed.length < 5) malformed.push(`${e} from ${JSON.stringify(b.toString('latin1'))}`);
      // a view into a longer buffer must behave like a copy
      if (JSON.stringify(sniffHttpHead(Buffer.from(b))) !== JSON.stringify(r) && unstable.length < 5) unstable.push(`view vs copy #${i}`);
      const cut = randInt(rnd, 0, len);
      const p = sniffHttpHead(wide.subarray(0, cut));
      if (p.kind !== 'need-more' && JSON.stringify(p) !== JSON.stringify(r) && unstable.length < 5) unstable.push(`#${i} prefix ${cut}/${len}`);
    } catch {
      thrown++;
    }
  }
  t.equal(thrown, 0, 'never throws');
  t.strictSame(malformed, [], 'always a well-formed answer');
  t.strictSame(unstable, [], 'verdicts are stable as data arrives');
  t.ok(kinds.http > 1000 && kinds['need-more'] > 1000 && kinds['not-http'] > 100, `all kinds seen: ${JSON.stringify(kinds)}`);
});
