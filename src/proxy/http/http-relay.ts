// Relays one client's HTTP/1.x stream to one upstream connection, request by
// request, with Node's own parser (llhttp, through HTTPParser) driven
// directly: request heads are parsed and written again (with a rule's header
// edits), bodies pass as the parser hands them over, and responses go back as
// raw bytes, watched by a second parser only to learn each one's status and
// end. Far cheaper than an http.Server plus a ClientRequest per request, and
// responses stay byte-for-byte what the server sent.
//
// One reading of the stream, ours, is what the server gets: every head is
// written again in canonical form (CRLF, one Host), so a server never sees
// bytes we did not read. What llhttp cannot read, or a server could read
// another way (two Hosts, no Host in HTTP/1.1, a Host that is not
// host[:port], Transfer-Encoding in HTTP/1.0), is answered 400. llhttp takes
// bare LF line ends as nginx does (two lenient flags), and still refuses
// Content-Length with Transfer-Encoding, two Content-Lengths and obs-fold.
//
// Keep-alive and pipelining: requests are forwarded in order on the one
// upstream connection and the responses come back in the same order. A
// verdict may take time (a DNS answer): later requests wait behind it, and
// the client is paused. A refused request is answered (403, 421 or 400) once
// the responses before it are through, and the connection then closes.
//
// Upgrade and CONNECT: the client's bytes after such a head are held until the
// server answers; only a 101 (or a 2xx to CONNECT) turns the stream into raw
// bytes. Any other answer and the held bytes are parsed as requests again, so
// a server that ignores the Upgrade cannot be sent requests we did not see.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
// HTTPParser is Node's binding to llhttp, the parser behind node:http itself
// eslint-disable-next-line @typescript-eslint/ban-ts-comment
// @ts-ignore: no types for this internal module
import { HTTPParser, methods } from '_http_common';
import { applyHeaderEdits, withoutH2cUpgrade } from './header-edits.js';
import { passErrors } from '../relay.js';
import { refusalResponse, pathOnly, type HttpExchange, type HttpRequestInfo, type Refusal, type RequestVerdict } from './http-forward.js';
import { requestHost } from './request-host.js';

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(b: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [k: number]: unknown;
}
type ParserClass = {
  new (): Parser;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientOptionalCRBeforeLF: number;
  kLenientOptionalLFAfterCR: number;
};
const P = HTTPParser as ParserClass;
const METHODS = methods as string[];
/** Bare LF as a line end (nginx takes it; llhttp needs both flags for the request line). */
const REQUEST_LENIENCE = P.kLenientOptionalCRBeforeLF | P.kLenientOptionalLFAfterCR;
/** Client bytes held after an Upgrade or CONNECT head while its answer is awaited. */
const MAX_HELD = 64 * 1024;
/**
 * The longest the end of a response after which the server closes waits for
 * that close (see "the last response" below). A server closes at once; this
 * only bounds one that does not.
 */
export const LAST_RESPONSE_HOLD_MS = 5;

interface Pending {
  info: HttpRequestInfo;
  verdict?: RequestVerdict;
  started: number;
  up: number;
  chunked: boolean;
  /** Upgrade or CONNECT: the stream may turn raw after it. */
  upgrade: boolean;
}

export interface HttpRelayOptions {
  /** The rules' say on one request; a promise holds this request and the ones after it. */
  decide: (info: HttpRequestInfo) => RequestVerdict | Promise<RequestVerdict>;
  onExchange: (e: HttpExchange) => void;
  /**
   * Asked at each exchange: when now() says the exchange is not logged (its level is off), its
   * fields are not built and only count() is told. Without it every exchange is built.
   */
  quiet?: { now(): boolean; count(): void };
}

export type HttpRelayEnd = 'closed' | 'client-reset' | 'upstream-reset' | 'client-error' | 'upstream-error' | 'bad-request' | 'rejected' | 'misdirected';

const END_OF: Record<Refusal['status'], HttpRelayEnd> = { 400: 'bad-request', 403: 'rejected', 421: 'misdirected' };

export function relayHttp(client: Duplex, upstream: net.Socket, opts: HttpRelayOptions): Promise<{ end: HttpRelayEnd; error?: string }> {
  return new Promise((resolve) => {
    const responses: Pending[] = []; // forwarded, waiting for their responses
    let result: { end: HttpRelayEnd; error?: string } | null = null;
    let open = 2;
    const done = () => {
      if (--open === 0) {
        req.close();
        res.close();
        resolve(result ?? { end: 'closed' });
      }
    };
    client.on('close', done);
    upstream.on('close', done);

    // ---- ordered work: a head waits for its verdict, what follows waits behind it ----
    const work: (() => void | Promise<void>)[] = [];
    let busy = false;
    const schedule = (step: () => void | Promise<void>) => {
      if (!busy && work.length === 0) {
        const r = step();
        if (r) wait(r);
      } else {
        work.push(step);
      }
    };
    const wait = (r: Promise<void>) => {
      busy = true;
      flow();
      r.then(drainWork, (e: Error) => refuse(null, { status: 400, body: 'Bad request\n' }, e.message));
    };
    const drainWork = () => {
      busy = false;
      while (work.length > 0) {
        const r = work.shift()!();
        if (r) return wait(r);
      }
      flow();
    };

    // ---- requests: client → upstream ----
    let mode: 'http' | 'held' | 'raw' | 'refusing' = 'http';
    let held: Buffer[] = [];
    let heldBytes = 0;
    let clientEnded = false;
    let refusal: { p: Pending | null; r: Refusal; error?: string } | null = null;
    const req = new P();
    const startParser = () => req.initialize(P.REQUEST, {}, 0, REQUEST_LENIENCE);
    startParser();
    let headers: string[] = [];
    let url = '';
    let current: Pending | null = null;
    req[P.kOnHeaders] = (h: string[], u: string) => {
      headers = headers.concat(h);
      url += u;
    };
    req[P.kOnHeadersComplete] = (major: number, minor: number, h: string[] | undefined, method: number, u: string | undefined, _s: unknown, _m: unknown, upgrade: boolean) => {
      const raw = h ?? headers;
      const target = u ?? url;
      headers = [];
      url = '';
      const hosts: string[] = [];
      let te = false;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const k = raw[i];
        if (k.length === 4 && k.toLowerCase() === 'host') hosts.push(raw[i + 1]);
        else if (k.length === 17 && k.toLowerCase() === 'transfer-encoding') te = true;
      }
      const name = METHODS[method];
      const where = requestHost(name, target, hosts, major > 1 || minor >= 1);
      const info: HttpRequestInfo = { method: name, host: where.ok ? where.host : undefined, path: pathOnly(where.ok ? where.path : target) };
      // llhttp only takes a request Transfer-Encoding that ends in chunked
      const p: Pending = (current = { info, started: performance.now(), up: 0, chunked: te, upgrade });
      if (upgrade) mode = 'held';
      const bad = !where.ok ? where.reason : te && major === 1 && minor === 0 ? 'Transfer-Encoding in HTTP/1.0' : null;
      if (bad !== null) {
        schedule(() => refuse(p, { status: 400, body: `Bad request: ${bad}\n` }));
        return 0;
      }
      const verdict = opts.decide(info);
      const head = () => {
        let out = raw;
        if (where.ok && where.replaceHost !== undefined) out = replaceHost(out, where.replaceHost);
        out = withoutH2cUpgrade(out);
        return out;
      };
      const forward = (v: RequestVerdict) => {
        p.verdict = v;
        if (refusal) return;
        if (v.refuse) return refuse(p, v.refuse);
        const out = v.edits.length ? applyHeaderEdits(head(), v.edits) : head();
        let text = `${name} ${target} HTTP/${major}.${minor}\r\n`;
        for (let i = 0; i + 1 < out.length; i += 2) text += `${out[i]}: ${out[i + 1]}\r\n`;
        responses.push(p);
        upstream.write(text + '\r\n', 'latin1');
      };
      schedule(() => (verdict instanceof Promise ? verdict.then(forward) : forward(verdict)));
      return 0;
    };
    req[P.kOnBody] = (b: Buffer) => {
      const p = current;
      if (!p) return;
      p.up += b.length;
      schedule(() => {
        if (refusal || !p.verdict || p.verdict.refuse) return;
        if (p.chunked) upstream.write(`${b.length.toString(16)}\r\n`);
        upstream.write(b);
        if (p.chunked) upstream.write('\r\n');
      });
    };
    req[P.kOnMessageComplete] = () => {
      const p = current;
      schedule(() => {
        if (p && p.chunked && !refusal && p.verdict && !p.verdict.refuse) upstream.write('0\r\n\r\n');
        maybeRefuse();
      });
    };

    const feed = (chunk: Buffer) => {
      const n = req.execute(chunk);
      if (n instanceof Error) {
        mode = 'refusing';
        const why = (n as Error & { reason?: string }).reason ?? n.message;
        schedule(() => refuse(null, { status: 400, body: `Bad request: ${why}\n` }, n.message));
        return;
      }
      // after an Upgrade or CONNECT head the rest waits for the server's answer
      if (mode === 'held' && n < chunk.length) hold(chunk.subarray(n));
    };
    const hold = (b: Buffer) => {
      held.push(b);
      heldBytes += b.length;
      flow();
    };
    client.on('data', (chunk: Buffer) => {
      if (mode === 'raw') {
        if (!upstream.write(chunk)) client.pause();
      } else if (mode === 'held') {
        hold(chunk);
      } else if (mode === 'http') {
        feed(chunk);
        flow();
      }
    });
    /** Reading pauses while a verdict is awaited, held bytes pile up, or the upstream pushes back. */
    const flow = () => {
      if (busy || heldBytes > MAX_HELD || upstream.writableNeedDrain) client.pause();
      else client.resume();
    };
    upstream.on('drain', flow);
    client.on('end', () => {
      clientEnded = true;
      if (mode === 'http' || mode === 'raw') schedule(endUpstream);
    });
    const endUpstream = () => {
      if (!upstream.writableEnded && !refusal) upstream.end();
    };

    /** The upgrade's answer came: raw from now on, or requests again. */
    const settleUpgrade = (raw: boolean) => {
      const rest = held;
      held = [];
      heldBytes = 0;
      if (raw) {
        mode = 'raw';
        for (const b of rest) upstream.write(b);
      } else {
        mode = 'http';
        startParser();
        for (const b of rest) if (mode === 'http') feed(b);
      }
      // feed() may have met another Upgrade head (held again) or a bad request (refusing)
      const now = mode as typeof mode;
      if (clientEnded && (now === 'http' || now === 'raw')) schedule(endUpstream);
      flow();
    };

    const refuse = (p: Pending | null, r: Refusal, error?: string) => {
      if (refusal) return;
      mode = 'refusing';
      refusal = { p, r, error };
      held = [];
      heldBytes = 0;
      client.resume(); // what the client still sends is read and dropped
      maybeRefuse();
    };
    const maybeRefuse = () => {
      if (!refusal || responses.length > 0 || client.writableEnded) return;
      client.end(refusalResponse(refusal.r));
      upstream.end();
      result ??= { end: END_OF[refusal.r.status], ...(refusal.error ? { error: refusal.error } : {}) };
      if (refusal.p) report(refusal.p, refusal.r.status);
    };

    const quiet = opts.quiet;
    const report = (p: Pending, status: number, down = 0, error?: string) =>
      quiet?.now() === true
        ? quiet.count()
        : opts.onExchange({
            ...p.info,
            status,
            up: p.up,
            down,
            ms: Math.round(performance.now() - p.started),
            rule: p.verdict?.rule ?? 'none',
            action: p.verdict?.action ?? 'refused',
            error,
          });

    // ---- responses: upstream → client, raw; the parser only watches ----
    const res = new P();
    res.initialize(P.RESPONSE, {}, 0, 0);
    let status = 0;
    let down = 0;
    let watching = true;
    // The last response: when the server says it closes after a response
    // (Connection: close, HTTP/1.0), the chunk that ends it waits for the
    // server's FIN, read one event-loop turn or more later, and both go to the
    // client together. Sent at once, the client read the response and closed
    // first, so the TIME-WAIT stayed with it, one per connection (issue 16;
    // over the kernel path the server's data and FIN arrive together).
    let keepAlive = true;
    let lastDone = false;
    let tail: Buffer | null = null;
    let tailTimer: NodeJS.Timeout | null = null;
    const releaseTail = () => {
      if (tailTimer) clearTimeout(tailTimer);
      tailTimer = null;
      const t = tail;
      tail = null;
      if (t && !client.writableEnded && !client.destroyed) client.write(t);
    };
    res[P.kOnHeadersComplete] = (_maj: number, _min: number, _h: unknown, _m: unknown, _u: unknown, code: number, _sm: unknown, _up: unknown, ka: boolean) => {
      status = code;
      down = 0;
      keepAlive = ka !== false;
      const p = responses[0];
      if (p?.upgrade && (code === 101 || code >= 200)) {
        // 101, or 2xx to CONNECT: the connection now carries something else, passed raw
        const raw = code === 101 || (p.info.method === 'CONNECT' && code < 300);
        if (raw) {
          watching = false;
          responses.shift();
          report(p, code);
        }
        process.nextTick(() => settleUpgrade(raw));
      }
      // no body for HEAD, and none for 1xx/204/304 (llhttp knows the latter)
      return p?.info.method === 'HEAD' ? 1 : 0;
    };
    res[P.kOnBody] = (b: Buffer) => {
      down += b.length;
    };
    res[P.kOnMessageComplete] = () => {
      if (status >= 100 && status < 200 && status !== 101) return; // interim: the request is still open
      if (!keepAlive) lastDone = true;
      const p = responses.shift();
      if (p) report(p, status, down);
      maybeRefuse();
    };
    upstream.on('data', (chunk: Buffer) => {
      releaseTail(); // more after the last response: it goes on, in order
      if (watching && refusal === null) {
        // watched first, so the chunk that ends the last response can wait for the FIN
        lastDone = false;
        if (res.execute(chunk) instanceof Error) watching = false; // unparseable: still relayed
        if (lastDone && refusal === null && watching) {
          tail = chunk;
          tailTimer = setTimeout(releaseTail, LAST_RESPONSE_HOLD_MS);
          return;
        }
        if (!client.write(chunk)) upstream.pause();
        return;
      }
      // relayed before it is watched: a refusal that waits for this response goes after it
      if (!client.write(chunk)) upstream.pause();
      if (watching && res.execute(chunk) instanceof Error) watching = false; // unparseable: still relayed
    });
    // a reset after the last response: the client still gets the response, then the reset
    upstream.on('error', releaseTail);
    client.on('drain', () => upstream.resume());
    upstream.on('end', () => {
      if (watching) res.finish(); // a body delimited by the close completes now
      for (const p of responses.splice(0)) report(p, status, down, 'upstream closed');
      if (refusal) {
        releaseTail();
        maybeRefuse();
      }
      if (tailTimer) clearTimeout(tailTimer);
      const t = tail;
      tail = null;
      // the last data and the FIN in one call: the stream's FIN (a nextTick) is queued before the TX flush (a microtask)
      if (!client.writableEnded) {
        if (t) client.end(t);
        else client.end();
      }
    });

    passErrors(client, upstream, (r) => (result ??= r));
  });
}

/** The head's Host header(s) replaced by one with the request target's authority (RFC 9112 §3.2.2). */
function replaceHost(raw: readonly string[], host: string): string[] {
  const out: string[] = [];
  let name = 'Host';
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].length === 4 && raw[i].toLowerCase() === 'host') name = raw[i];
    else out.push(raw[i], raw[i + 1]);
  }
  return [name, host, ...out];
}
