// Serves the HTTP/1.x requests of one client stream with Node's own HTTP
// machinery (llhttp), so keep-alive, pipelining, chunked bodies, 100-continue
// and Upgrade behave as Node does. Each request is decided on its own (header
// rules, reject with 403) and forwarded over this session's upstream
// connection; a new one is dialled when the server closed the last.
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { applyHeaderEdits, type HeaderEdit } from './header-edits.js';

export interface HttpRequestInfo {
  method: string;
  /** Host header without port, lower case. */
  host?: string;
  path: string;
}

export interface RequestVerdict {
  rule: string;
  action: string;
  reject: boolean;
  edits: HeaderEdit[];
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

export interface HttpSessionOptions {
  /** An upstream connection: the first call may hand over one already dialled. */
  connect: () => Promise<net.Socket>;
  decide: (info: HttpRequestInfo) => RequestVerdict;
  onExchange: (e: HttpExchange) => void;
}

interface Session extends HttpSessionOptions {
  agent: http.Agent;
}

const sessions = new WeakMap<object, Session>();

export function hostWithoutPort(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return (colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h).replace(/\.$/, '') || undefined;
}

/** Query strings may carry tokens: logs keep the path only. */
function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function requestInfo(req: http.IncomingMessage): HttpRequestInfo {
  return { method: req.method ?? '', host: hostWithoutPort(req.headers.host), path: pathOnly(req.url ?? '') };
}

export function forbidden(rule: string): string {
  return `Blocked by tunsteer rule "${rule}".\n`;
}

function rawResponseHead(res: http.IncomingMessage): string {
  let head = `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage ?? ''}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return head + '\r\n';
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
  if (verdict.reject) {
    const body = forbidden(verdict.rule);
    req.resume();
    res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return report(403);
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

function onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
  const s = sessions.get(socket);
  if (!s) return void socket.destroy();
  const started = performance.now();
  const info = requestInfo(req);
  const verdict = s.decide(info);
  const report = (status: number, error?: string) =>
    s.onExchange({ ...info, status, up: 0, down: 0, ms: Math.round(performance.now() - started), rule: verdict.rule, action: verdict.action, error });
  if (verdict.reject) {
    const body = forbidden(verdict.rule);
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    return report(403);
  }
  const upReq = http.request({
    agent: s.agent,
    method: req.method,
    path: req.url,
    headers: applyHeaderEdits(req.rawHeaders, verdict.edits) as unknown as http.OutgoingHttpHeaders,
    setHost: false,
  });
  upReq.on('upgrade', (ures, usock, uhead) => {
    socket.write(rawResponseHead(ures));
    if (uhead.length) socket.write(uhead);
    if (head.length) usock.write(head);
    socket.on('error', () => usock.destroy());
    usock.on('error', () => socket.destroy());
    socket.pipe(usock);
    usock.pipe(socket);
    report(ures.statusCode ?? 101);
  });
  upReq.on('response', (ures) => {
    // the server declined the upgrade: pass its answer on and end like it
    socket.write(rawResponseHead(ures));
    ures.pipe(socket);
    report(ures.statusCode ?? 0);
  });
  upReq.on('error', (e) => {
    socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    report(502, e.message);
  });
  req.pipe(upReq);
}

let frontend: http.Server | null = null;

/** One parser front end for all sessions: requests find their session by socket. */
function httpFrontend(): http.Server {
  if (frontend) return frontend;
  frontend = http.createServer({
    // long uploads and idle keep-alive are the client's business, not ours
    requestTimeout: 0,
    headersTimeout: 0,
    keepAliveTimeout: 0,
    requireHostHeader: false,
  });
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const s = sessions.get(req.socket);
    if (!s) return void req.socket.destroy();
    forwardRequest(req, res, s.agent, s.decide(requestInfo(req)), s.onExchange);
  };
  frontend.on('request', onRequest);
  // 100-continue is answered when the server sends its own, not before
  frontend.on('checkContinue', onRequest);
  frontend.on('upgrade', onUpgrade);
  frontend.on('connect', (_req, socket: Duplex) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  });
  frontend.on('clientError', (_err, socket: Duplex) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  return frontend;
}

/** Serves the client's requests until it closes; resolves then. */
export function serveHttp(client: Duplex, opts: HttpSessionOptions): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
  (agent as unknown as { createConnection: unknown }).createConnection = (_o: unknown, cb: (err: Error | null, s?: net.Socket) => void) => {
    opts.connect().then((sock) => cb(null, sock), (e: Error) => cb(e));
    return undefined;
  };
  sessions.set(client, { ...opts, agent });
  return new Promise((resolve) => {
    client.once('close', () => {
      agent.destroy();
      resolve();
    });
    httpFrontend().emit('connection', client);
  });
}
