// The HTTP relay drives Node's private `_http_common` (HTTPParser, llhttp's
// binding, and its method table) directly: src/proxy/http/http-relay.ts. Node
// may change it in any release. This checks every part the relay relies on,
// with what it relies on them to do, so a Node upgrade that changes one fails
// here by name rather than as odd relay behaviour. Why the private module, and
// the public fallback: docs/DECISIONS.md (Tooling: the private HTTP parser).
import t from 'tap';

const WHY = `Node ${process.version}: _http_common changed, and src/proxy/http/http-relay.ts drives it (see docs/DECISIONS.md, the private HTTP parser)`;
const MODULE: string = '_http_common'; // a string, not a literal: the module has no types

type Callback = (...args: unknown[]) => unknown;
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(b: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [k: number]: Callback;
}
type ParserClass = { new (): Parser } & Record<string, number>;

const mod = (await import(MODULE)) as { HTTPParser?: ParserClass; methods?: string[] };
const P = mod.HTTPParser as ParserClass;
const KEYS = ['REQUEST', 'RESPONSE', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kLenientOptionalCRBeforeLF', 'kLenientOptionalLFAfterCR'];

t.test('the module, the parser class, its constants and methods are there', async (t) => {
  t.type(mod.HTTPParser, 'function', `${WHY}: no HTTPParser export`);
  t.ok(Array.isArray(mod.methods), `${WHY}: no methods export`);
  for (const m of ['GET', 'HEAD', 'POST', 'CONNECT', 'OPTIONS']) t.ok(mod.methods?.includes(m), `${WHY}: methods lacks ${m}`);
  for (const k of KEYS) t.ok(Number.isInteger(P?.[k]), `${WHY}: HTTPParser.${k} is not a number`);
  t.not(P.REQUEST, P.RESPONSE, `${WHY}: REQUEST and RESPONSE are one`);
  const callbacks = [P.kOnHeaders, P.kOnHeadersComplete, P.kOnBody, P.kOnMessageComplete];
  t.equal(new Set(callbacks).size, 4, `${WHY}: the callback slots are not distinct`);
  for (const k of ['kLenientOptionalCRBeforeLF', 'kLenientOptionalLFAfterCR']) {
    t.ok(P[k] > 0 && (P[k] & (P[k] - 1)) === 0, `${WHY}: ${k} is no single flag bit`);
  }
  for (const m of ['initialize', 'execute', 'finish', 'close']) t.type(P?.prototype?.[m as keyof Parser], 'function', `${WHY}: parser.${m}() is gone`);
});

/** A parser of `type`, recording its callbacks; onHead's return value is the parser's skip-body answer. */
function parser(type: 'REQUEST' | 'RESPONSE', lenient = 0, onHead: () => number = () => 0) {
  const p = new P();
  p.initialize(P[type], {}, 0, lenient);
  const heads: unknown[][] = [];
  const bodies: string[] = [];
  let complete = 0;
  p[P.kOnHeaders] = () => undefined; // heads longer than one read arrive here first
  p[P.kOnHeadersComplete] = (...args: unknown[]) => {
    heads.push(args);
    return onHead();
  };
  p[P.kOnBody] = (b: unknown) => void bodies.push(String(b));
  p[P.kOnMessageComplete] = () => void complete++;
  return { p, heads, bodies, complete: () => complete };
}

t.test('a request head: (major, minor, headers, method index, url, ..., upgrade) as the relay reads them', async (t) => {
  const r = parser('REQUEST');
  t.type(r.p.execute(Buffer.from('GET /a?b HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n\r\n')), 'number', `${WHY}: execute() failed on a plain request`);
  t.equal(r.heads.length, 1, `${WHY}: kOnHeadersComplete not called`);
  const [major, minor, headers, method, url, , , upgrade] = r.heads[0];
  t.same([major, minor], [1, 1], `${WHY}: version arguments moved`);
  t.same(headers, ['Host', 'example.com', 'X-A', '1'], `${WHY}: headers argument moved or changed shape`);
  t.equal(mod.methods?.[method as number], 'GET', `${WHY}: the method argument is no index into methods`);
  t.equal(url, '/a?b', `${WHY}: url argument moved`);
  t.equal(upgrade, false, `${WHY}: upgrade argument moved`);
  t.equal(r.complete(), 1, `${WHY}: kOnMessageComplete not called`);
  const u = parser('REQUEST');
  u.p.execute(Buffer.from('GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'));
  t.equal(u.heads[0]?.[7], true, `${WHY}: an Upgrade request no longer says so in argument 8`);
  const c = parser('REQUEST');
  c.p.execute(Buffer.from('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'));
  t.equal(mod.methods?.[c.heads[0]?.[3] as number], 'CONNECT');
  t.equal(c.heads[0]?.[7], true, `${WHY}: CONNECT no longer reported as an upgrade`);
});

t.test('a body: kOnBody gets the bytes; bare LF only with the two lenient flags', async (t) => {
  const r = parser('REQUEST');
  r.p.execute(Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'));
  t.same(r.bodies, ['hello'], `${WHY}: kOnBody no longer gets the body`);
  const bare = 'GET / HTTP/1.1\nHost: x\n\n';
  const strict = parser('REQUEST');
  t.type(strict.p.execute(Buffer.from(bare)), Error, 'without the flags a bare LF is refused (else the flags mean nothing)');
  const lenient = parser('REQUEST', P.kLenientOptionalCRBeforeLF | P.kLenientOptionalLFAfterCR);
  t.type(lenient.p.execute(Buffer.from(bare)), 'number', `${WHY}: the lenient flags no longer take a bare LF`);
  t.equal(lenient.complete(), 1);
  t.type(parser('REQUEST').p.execute(Buffer.from('NOT HTTP\r\n\r\n')), Error, `${WHY}: execute() no longer returns an Error for garbage`);
});

t.test('a response: the status is argument 6, and returning 1 means no body (HEAD)', async (t) => {
  const r = parser('RESPONSE');
  r.p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'));
  t.equal(r.heads[0]?.[5], 200, `${WHY}: the status code argument moved`);
  t.same(r.bodies, ['abc']);
  t.equal(r.complete(), 1);
  const head = parser('RESPONSE', 0, () => 1);
  head.p.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n'));
  t.equal(head.complete(), 1, `${WHY}: returning 1 from kOnHeadersComplete no longer skips the body`);
  const close = parser('RESPONSE');
  close.p.execute(Buffer.from('HTTP/1.1 200 OK\r\n\r\nuntil the close'));
  t.equal(close.complete(), 0);
  close.p.finish();
  t.equal(close.complete(), 1, `${WHY}: finish() no longer completes a body delimited by the close`);
  close.p.close();
});
