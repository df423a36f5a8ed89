// The control API and the dashboard on one listener, shaped like the Clash
// external-controller API so existing dashboards (metacubexd, yacd,
// zashboard) work against it unmodified where they can (README "Operating
// it live" lists what is served). Every answer is JSON; live feeds are a
// WebSocket on the same path, or chunked HTTP (feeds.ts). The dashboard's
// files at /ui/ carry no data and need no secret; everything else does
// (auth.ts). CORS lets a dashboard served from another origin call it.
import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer } from 'ws';
import type { Logger } from '../logging/log.js';
import { RateLimit } from '../logging/rate-limit.js';
import { authorize } from './auth.js';
import { clashConfig, clashLog, clashProxies, clashRule, connectionsMessage, minLevel } from './clash-shapes.js';
import type { ControlContext } from './contracts.js';
import { feedOverHttp, feedOverWebSocket, periodic, type Feed } from './feeds.js';
import { combineSources, type CombinedSource } from './live-sources.js';
import { loadUi, type StaticFile } from './static-ui.js';
import { TrafficMeter } from './traffic-meter.js';

const MAX_BODY = 1 << 20;
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
  'access-control-allow-headers': 'Content-Type, Authorization',
  'access-control-max-age': '300',
};
const STATUS_OF_REFUSAL = { invalid: 400, restart: 409, failed: 500, unsupported: 501 } as const;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class ControlServer {
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly live: CombinedSource;
  readonly traffic: TrafficMeter;
  private readonly ui: Map<string, StaticFile>;
  private readonly denied = new RateLimit(10_000);

  constructor(
    private readonly ctx: ControlContext,
    private readonly log: Logger,
    ui: Map<string, StaticFile> = loadUi(),
  ) {
    this.ui = ui;
    this.live = combineSources(ctx.live);
    this.traffic = new TrafficMeter(() => this.live.totals());
    this.server = http.createServer((req, res) => void this.onRequest(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** Binds (while the process may still bind any port) and starts the traffic meter. */
  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => {
        this.traffic.start();
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  close(): void {
    this.traffic.stop();
    for (const ws of this.wss.clients) ws.terminate();
    this.server.close();
    this.server.closeAllConnections();
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control');
    try {
      if (req.method === 'OPTIONS') return this.preflight(req, res);
      if (url.pathname === '/ui' || url.pathname.startsWith('/ui/')) return this.serveUi(url.pathname, res);
      this.checkAuth(req, url);
      await this.route(req, res, url);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message);
      if (err.status === 500) this.log.error({ err: err.message, path: url.pathname }, 'control API failed');
      if (!res.headersSent) send(res, err.status, { message: err.message, ...err.extra });
      else res.destroy();
    }
  }

  private checkAuth(req: http.IncomingMessage, url: URL): void {
    const verdict = authorize(req, url, this.ctx.secret);
    if (verdict === 'ok') return;
    // never the credential: the address and the path only
    if (this.denied.allow(Date.now())) this.log.warn({ from: req.socket.remoteAddress, path: url.pathname, why: verdict }, 'control API request refused');
    if (verdict === 'misdirected') throw new HttpError(421, 'Misdirected: name this listener by its address (127.0.0.1), or set a secret');
    throw new HttpError(401, 'Unauthorized');
  }

  private preflight(req: http.IncomingMessage, res: http.ServerResponse): void {
    // Chrome asks before a public page may reach a private address (Private Network Access)
    const pna = req.headers['access-control-request-private-network'] === 'true' ? { 'access-control-allow-private-network': 'true' } : {};
    res.writeHead(204, { ...CORS, ...pna }).end();
  }

  private serveUi(path: string, res: http.ServerResponse): void {
    if (path === '/ui') return void res.writeHead(301, { location: '/ui/' }).end();
    const name = path === '/ui/' ? 'index.html' : path.slice('/ui/'.length);
    const f = this.ui.get(name);
    if (!f) throw new HttpError(404, `no such file: ${name}`);
    res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' }).end(f.body);
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const { ctx } = this;
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const get = method === 'GET';
    if (path === '/' && get) return send(res, 200, { hello: 'tunsteer' });
    if (path === '/version' && get) return send(res, 200, { version: ctx.version, meta: true, premium: true });
    if (path === '/configs') {
      if (get) return send(res, 200, clashConfig(ctx.config(), ctx.logLevel()));
      if (method === 'PUT') return this.reload(req, res, url);
      if (method === 'PATCH') return this.patchConfig(req, res);
    }
    if (path === '/rules' && get) return send(res, 200, { rules: (await ctx.rules()).map(clashRule) });
    if ((path === '/providers/rules' || path === '/providers/proxies') && get) return send(res, 200, { providers: {} });
    if (path === '/proxies' && get) return send(res, 200, clashProxies(ctx.upstreams()));
    if (path.startsWith('/proxies/')) {
      const name = decodeURIComponent(path.slice('/proxies/'.length));
      const p = clashProxies(ctx.upstreams()).proxies[name];
      if (!p) throw new HttpError(404, `no proxy named ${name}`);
      if (get) return send(res, 200, p);
      throw new HttpError(400, 'tunsteer chooses upstreams by its rules: edit the config and reload');
    }
    if (path === '/connections') {
      if (get) return send(res, 200, connectionsMessage(await this.live.connections(), await this.live.totals()));
      if (method === 'DELETE') {
        const n = await this.live.closeAll();
        this.log.info({ closed: n }, 'control API closed every connection');
        return void res.writeHead(204, CORS).end();
      }
    }
    if (path.startsWith('/connections/') && method === 'DELETE') {
      const id = decodeURIComponent(path.slice('/connections/'.length));
      const closed = await this.live.close(id);
      if (closed) this.log.info({ id }, 'control API closed a connection');
      // as Clash: gone already is not an error (the dashboard's list was a second old)
      return void res.writeHead(204, CORS).end();
    }
    const feed = this.feedFor(path, url);
    if (feed && get) return feedOverHttp(req, res, feed, CORS);
    if (path === '/tunsteer/status' && get) return send(res, 200, ctx.status());
    if (path === '/tunsteer/fakeip' && get) return send(res, 200, { mappings: ctx.fakeIps() });
    if (path === '/tunsteer/traffic' && get) return send(res, 200, { samples: this.traffic.history() });
    if (path === '/tunsteer/logs' && get) {
      const least = minLevel(url.searchParams.get('level'));
      return send(res, 200, {
        lines: ctx.logs
          .recent()
          .filter((l) => l.level >= least)
          .map((l) => clashLog(l, true)),
      });
    }
    throw new HttpError(404, `no ${method} ${path} here`);
  }

  /** The live feeds, by path: connections every ?interval ms (default 1000), traffic and memory every second, log lines as written. */
  private feedFor(path: string, url: URL): Feed | null {
    if (path === '/connections') {
      const interval = Math.min(60_000, Math.max(200, Number(url.searchParams.get('interval') ?? 1000) || 1000));
      return periodic(interval, async () => connectionsMessage(await this.live.connections(), await this.live.totals()));
    }
    if (path === '/traffic') return (sendMsg) => this.traffic.subscribe((s) => sendMsg({ up: s.up, down: s.down }));
    if (path === '/memory') return periodic(1000, () => ({ inuse: process.memoryUsage().rss, oslimit: 0 }));
    if (path === '/logs') {
      const least = minLevel(url.searchParams.get('level'));
      const structured = url.searchParams.get('format') === 'structured';
      return (sendMsg) => this.ctx.logs.subscribe((l) => l.level >= least && sendMsg(clashLog(l, structured)));
    }
    return null;
  }

  private onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://control');
    const path = url.pathname.replace(/\/+$/, '');
    let status = 404;
    try {
      this.checkAuth(req, url);
      const feed = this.feedFor(path, url);
      if (feed) return void this.wss.handleUpgrade(req, socket, head, (ws) => feedOverWebSocket(ws, feed));
    } catch (e) {
      status = e instanceof HttpError ? e.status : 500;
    }
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  }

  /** PUT /configs: tunsteer reloads the file it runs from (the supervisor reads it); a body naming another is refused. */
  private async reload(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const body = (await readJson(req)) as { path?: unknown; payload?: unknown } | null;
    if (body && ((typeof body.path === 'string' && body.path !== '') || (typeof body.payload === 'string' && body.payload !== ''))) {
      throw new HttpError(400, 'tunsteer reloads the config file it was started with: edit that file, then PUT /configs with no path or payload');
    }
    const force = url.searchParams.get('force') === 'true';
    const r = await this.ctx.reload(force);
    if (r.ok) return send(res, 200, r);
    const message = r.refused === 'restart' ? 'these settings need a restart' : r.refused === 'invalid' ? 'the config is not valid; the running one is kept' : 'reload failed';
    send(res, STATUS_OF_REFUSAL[r.refused ?? 'failed'], { message, ...r });
  }

  /** PATCH /configs: the log level changes at once (not saved); tunsteer has only the rule mode; the rest is the file's. */
  private async patchConfig(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readJson(req);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'expected a JSON object');
    const unknown: string[] = [];
    for (const [k, v] of Object.entries(body)) {
      if (k === 'log-level') {
        if (!this.ctx.setLogLevel(v === 'warning' ? 'warn' : String(v))) throw new HttpError(400, `log-level: "${String(v)}" is not debug, info, warning, error or silent`);
      } else if (!(k === 'mode' && String(v).toLowerCase() === 'rule')) {
        unknown.push(k);
      }
    }
    if (unknown.length) throw new HttpError(400, `${unknown.join(', ')}: not changed by the API in tunsteer (edit the config file and reload)`);
    res.writeHead(204, CORS).end();
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...CORS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new HttpError(413, 'body too large');
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
}
