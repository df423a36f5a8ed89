// Forwards one parsed HTTP request (the explicit proxy's absolute-URI
// requests, which may name a different server each) with Node's HTTP client,
// and the types every HTTP path shares. Streams from the TUN and CONNECT
// tunnels go through http-relay.ts instead.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { applyHeaderEdits, type HeaderEdit } from './header-edits.js';

export interface HttpRequestInfo {
  method: string;
  /** Host header without port, lower case. */
  host?: string;
  path: string;
}

/** A request the gateway answers itself: 403 a rule's reject, 421 another route or host than the connection's, 400 unreadable. */
export interface Refusal {
  status: 400 | 403 | 421;
  body: string;
}

export interface RequestVerdict {
  rule: string;
  action: string;
  /** Set: the request is not forwarded; the client gets this answer and the connection closes. */
  refuse?: Refusal;
  edits: HeaderEdit[];
}

const REASON: Record<Refusal['status'], string> = { 400: 'Bad Request', 403: 'Forbidden', 421: 'Misdirected Request' };

/** The whole response for a refusal; the connection closes after it. */
export function refusalResponse(r: Refusal): string {
  return `HTTP/1.1 ${r.status} ${REASON[r.status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(r.body)}\r\nconnection: close\r\n\r\n${r.body}`;
}

export interface HttpExchange extends HttpRequestInfo {
  status: number;
  /** Body bytes, client to server and back. */
  up: number;
  down: number;
  ms: number;
  rule: string;
  action: string;
  error?: string;
}

export function hostWithoutPort(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return (colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h).replace(/\.$/, '') || undefined;
}

/** Query strings may carry tokens: logs keep the path only. */
export function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function requestInfo(req: http.IncomingMessage): HttpRequestInfo {
  return { method: req.method ?? '', host: hostWithoutPort(req.headers.host), path: pathOnly(req.url ?? '') };
}

export function forbidden(rule: string): string {
  return `Blocked by tunsteer rule "${rule}".\n`;
}

/** Forwards one request over `agent` and its response back; reports the exchange once. */
export function forwardRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  agent: http.Agent,
  verdict: RequestVerdict,
  onExchange: (e: HttpExchange) => void,
  path = req.url ?? '/',
): void {
  const started = performance.now();
  const info = requestInfo(req);
  let up = 0;
  let down = 0;
  let reported = false;
  const report = (status: number, error?: string) => {
    if (reported) return;
    reported = true;
    onExchange({ ...info, status, up, down, ms: Math.round(performance.now() - started), rule: verdict.rule, action: verdict.action, error });
  };
  res.sendDate = false;
  if (verdict.refuse) {
    const { status, body } = verdict.refuse;
    req.resume();
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return report(status);
  }
  const upReq = http.request({
    agent,
    method: req.method,
    path,
    headers: applyHeaderEdits(req.rawHeaders, verdict.edits) as unknown as http.OutgoingHttpHeaders,
    setHost: false,
  });
  req.on('data', (c: Buffer) => (up += c.length));
  req.pipe(upReq);
  upReq.on('information', (i) => {
    if (i.statusCode === 100) res.writeContinue();
  });
  upReq.on('response', (ures) => {
    res.writeHead(ures.statusCode ?? 502, ures.statusMessage, ures.rawHeaders);
    ures.on('data', (c: Buffer) => (down += c.length));
    ures.pipe(res);
    res.on('finish', () => report(ures.statusCode ?? 0));
    ures.on('error', (e) => {
      res.destroy();
      report(ures.statusCode ?? 0, e.message);
    });
  });
  upReq.on('error', (e) => {
    if (!res.headersSent) {
      const body = `Bad gateway: ${e.message}\n`;
      res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
      report(502, e.message);
    } else {
      res.destroy();
      report(res.statusCode, e.message);
    }
  });
  res.on('close', () => {
    if (!res.writableFinished) {
      upReq.destroy();
      report(res.headersSent ? res.statusCode : 0, 'client closed');
    }
  });
}
