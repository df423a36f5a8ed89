// Relays one client's HTTP/1.x stream to one upstream connection, request by
// request, with Node's own parser (llhttp, through HTTPParser) driven
// directly: request heads are parsed and written again (with a rule's header
// edits), bodies pass as the parser hands them over, and responses go back as
// raw bytes, watched by a second parser only to learn each one's status and
// end. Far cheaper than an http.Server plus a ClientRequest per request, and
// responses stay byte-for-byte what the server sent.
//
// Keep-alive and pipelining: requests are forwarded in order on the one
// upstream connection and the responses come back in the same order. When
// the server closes, the client's connection ends too (as it would have without
// us). A rejected request is answered with a 403 once the responses before it
// are through, and the connection then closes.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
// HTTPParser is Node's binding to llhttp, the parser behind node:http itself
// eslint-disable-next-line @typescript-eslint/ban-ts-comment
// @ts-ignore: no types for this internal module
import { HTTPParser, methods } from '_http_common';
import { applyHeaderEdits } from './header-edits.js';
import { passErrors } from '../relay.js';
import { forbidden, hostWithoutPort, pathOnly, type HttpExchange, type HttpRequestInfo, type RequestVerdict } from './http-forward.js';

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(b: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [k: number]: unknown;
}
type ParserClass = { new (): Parser; REQUEST: number; RESPONSE: number; kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number };
const P = HTTPParser as ParserClass;
const METHODS = methods as string[];

interface Pending {
  info: HttpRequestInfo;
  verdict: RequestVerdict;
  started: number;
  up: number;
}

export interface HttpRelayOptions {
  decide: (info: HttpRequestInfo) => RequestVerdict;
  onExchange: (e: HttpExchange) => void;
}

export type HttpRelayEnd = 'closed' | 'client-reset' | 'upstream-reset' | 'client-error' | 'upstream-error' | 'bad-request' | 'rejected';

export function relayHttp(client: Duplex, upstream: net.Socket, opts: HttpRelayOptions): Promise<{ end: HttpRelayEnd; error?: string }> {
  return new Promise((resolve) => {
    const queue: Pending[] = [];
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

    // ---- requests: client → upstream ----
    const req = new P();
    req.initialize(P.REQUEST, {}, 0, 0);
    let headers: string[] = [];
    let url = '';
    let current: Pending | null = null;
    let chunked = false;
    let upgraded = false;
    let refusing: Pending | null = null; // a rejected request waits for the responses before it
    req[P.kOnHeaders] = (h: string[], u: string) => {
      headers = headers.concat(h);
      url += u;
    };
    req[P.kOnHeadersComplete] = (major: number, minor: number, h: string[] | undefined, method: number, u: string | undefined, _s: unknown, _m: unknown, upgrade: boolean) => {
      const raw = h ?? headers;
      const target = u ?? url;
      headers = [];
      url = '';
      let host: string | undefined;
      let te: string | undefined;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const k = raw[i];
        if (k.length === 4 && k.toLowerCase() === 'host') host ??= raw[i + 1];
        else if (k.length === 17 && k.toLowerCase() === 'transfer-encoding') te = raw[i + 1];
      }
      const info: HttpRequestInfo = { method: METHODS[method], host: hostWithoutPort(host), path: pathOnly(target) };
      const verdict = opts.decide(info);
      current = { info, verdict, started: performance.now(), up: 0 };
      if (verdict.reject || refusing) {
        refusing ??= current;
        return 0;
      }
      queue.push(current);
      chunked = te !== undefined && /(^|,)\s*chunked\s*$/i.test(te);
      const out = verdict.edits.length ? applyHeaderEdits(raw, verdict.edits) : raw;
      let head = `${info.method} ${target} HTTP/${major}.${minor}\r\n`;
      for (let i = 0; i + 1 < out.length; i += 2) head += `${out[i]}: ${out[i + 1]}\r\n`;
      upstream.write(head + '\r\n', 'latin1');
      if (upgrade) upgraded = true;
      return 0;
    };
    req[P.kOnBody] = (b: Buffer) => {
      if (!current || refusing) return;
      current.up += b.length;
      if (chunked) upstream.write(`${b.length.toString(16)}\r\n`);
      upstream.write(b);
      if (chunked) upstream.write('\r\n');
    };
    req[P.kOnMessageComplete] = () => {
      if (chunked && !refusing) upstream.write('0\r\n\r\n');
      chunked = false;
      if (refusing) maybeRefuse();
    };

    const maybeRefuse = () => {
      if (!refusing || queue.length > 0 || client.writableEnded) return;
      const r = refusing;
      const body = forbidden(r.verdict.rule);
      client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      upstream.end();
      result ??= { end: 'rejected' };
      report(r, 403);
    };

    const report = (p: Pending, status: number, down = 0, error?: string) =>
      opts.onExchange({ ...p.info, status, up: p.up, down, ms: Math.round(performance.now() - p.started), rule: p.verdict.rule, action: p.verdict.action, error });

    client.on('data', (chunk: Buffer) => {
      if (upgraded) {
        if (!upstream.write(chunk)) client.pause();
        return;
      }
      const n = req.execute(chunk);
      if (n instanceof Error) {
        result ??= { end: 'bad-request', error: n.message };
        client.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
        upstream.end();
        client.removeAllListeners('data');
        return;
      }
      // after an Upgrade head the rest is the new protocol's, passed raw
      if (upgraded && n < chunk.length) upstream.write(chunk.subarray(n));
      if (upstream.writableNeedDrain) client.pause();
    });
    upstream.on('drain', () => client.resume());
    client.on('end', () => {
      if (!upstream.writableEnded) upstream.end();
    });

    // ---- responses: upstream → client, raw; the parser only watches ----
    const res = new P();
    res.initialize(P.RESPONSE, {}, 0, 0);
    let status = 0;
    let down = 0;
    let watching = true;
    res[P.kOnHeadersComplete] = (_maj: number, _min: number, _h: unknown, _m: unknown, _u: unknown, code: number) => {
      status = code;
      down = 0;
      // no body for HEAD, and none for 1xx/204/304 (llhttp knows the latter)
      return queue[0]?.info.method === 'HEAD' ? 1 : 0;
    };
    res[P.kOnBody] = (b: Buffer) => {
      down += b.length;
    };
    res[P.kOnMessageComplete] = () => {
      if (status >= 100 && status < 200 && status !== 101) return; // interim: the request is still open
      const p = queue.shift();
      if (p) report(p, status, down);
      if (status === 101) watching = false;
      maybeRefuse();
    };
    upstream.on('data', (chunk: Buffer) => {
      if (watching && res.execute(chunk) instanceof Error) watching = false; // unparseable: still relayed
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => upstream.resume());
    upstream.on('end', () => {
      if (watching) res.finish(); // a body delimited by the close completes now
      for (const p of queue.splice(0)) report(p, status, down, 'upstream closed');
      if (!client.writableEnded) client.end();
    });

    passErrors(client, upstream, (r) => (result ??= r));
  });
}
