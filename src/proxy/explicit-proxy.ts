// The explicit-proxy inbound (the http_proxy / https_proxy way of steering):
// one loopback listener that speaks HTTP proxy (CONNECT and absolute-URI
// requests) and SOCKS5, told apart by the first byte. Every connection or
// request goes through the same proxy core and rules as the TUN's.
import http from 'node:http';
import net, { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../net/endpoint.js';
import type { InboundConnection, InboundKind, RejectHow } from './inbound.js';
import type { ProxyCore } from './proxy-core.js';
import { hostWithoutPort } from './http/http-forward.js';
import { readSocks5Request, SOCKS_REPLY, socksReply } from './socks5-server.js';

let nextId = 1;

function endpoint(host: string, port: number): Endpoint {
  return { family: isIP(host) === 6 ? 6 : 4, address: host, port };
}

/** An InboundConnection over an accepted socket (explicit proxy, REDIRECT, TPROXY). */
export function inbound(kind: InboundKind, socket: net.Socket, host: string, port: number, onAccept: () => void, onReject: (how: RejectHow) => void): InboundConnection {
  const readBase = socket.bytesRead;
  const writtenBase = socket.bytesWritten;
  let accepted = false;
  return {
    id: nextId++,
    inbound: kind,
    protocol: 'tcp',
    src: endpoint(socket.remoteAddress ?? '', socket.remotePort ?? 0),
    dst: endpoint(host, port),
    hostname: isIP(host) ? undefined : host.toLowerCase(),
    accept() {
      if (accepted) throw new Error('already accepted');
      if (socket.destroyed) throw new Error('client connection already gone');
      accepted = true;
      onAccept();
      return socket;
    },
    reject(how) {
      if (!socket.destroyed) onReject(how);
    },
    counters: () => ({ up: socket.bytesRead - readBase, down: Math.max(0, socket.bytesWritten - writtenBase) }),
  };
}

const HTTP_REFUSAL: Record<RejectHow, string> = {
  forbidden: '403 Forbidden',
  rst: '502 Bad Gateway',
  unreachable: '504 Gateway Timeout',
};

export class ExplicitProxy {
  private readonly server: net.Server;
  private readonly frontend: http.Server;

  constructor(private readonly core: ProxyCore) {
    this.frontend = http.createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 0, requireHostHeader: false });
    this.frontend.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onConnect(req, socket, head));
    this.frontend.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
    this.frontend.on('clientError', (_e, socket: Duplex) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.onSocket(s));
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host, port }, () => resolve(this.server.address() as net.AddressInfo));
    });
  }

  close(): void {
    this.server.close();
  }

  private onSocket(socket: net.Socket): void {
    socket.on('error', () => {});
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      if (first[0] === 0x05) this.onSocks(socket);
      else this.frontend.emit('connection', socket);
      socket.resume();
    });
  }

  private onSocks(socket: net.Socket): void {
    readSocks5Request(socket).then(
      (req) => {
        if (!req) return;
        const conn = inbound(
          'socks5',
          socket,
          req.host,
          req.port,
          () => socket.write(socksReply(SOCKS_REPLY.succeeded)),
          (how) => socket.end(socksReply(how === 'forbidden' ? SOCKS_REPLY.notAllowed : how === 'rst' ? SOCKS_REPLY.refused : SOCKS_REPLY.hostUnreachable)),
        );
        this.core.handle(conn);
      },
      () => socket.destroy(),
    );
  }

  private onConnect(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    const target = parseAuthority(req.url ?? '');
    if (!target) return void socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    const conn = inbound(
      'http-proxy',
      socket,
      target.host,
      target.port,
      () => {
        socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
        if (head.length) socket.unshift(head);
      },
      (how) => socket.end(`HTTP/1.1 ${HTTP_REFUSAL[how]}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`),
    );
    this.core.handle(conn);
  }

  /** An absolute-URI request (plain http through the proxy): decided and forwarded on its own. */
  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Error('scheme');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain', connection: 'close' });
      return void res.end('tunsteer is a proxy: send absolute http:// URIs or CONNECT\n');
    }
    const host = hostWithoutPort(url.host) ?? '';
    const port = url.port ? Number(url.port) : 80;
    this.core.forwardProxyRequest(req, res, {
      src: endpoint(req.socket.remoteAddress ?? '', req.socket.remotePort ?? 0),
      host,
      port,
      path: url.pathname + url.search,
      authority: url.host,
    });
  }
}

function parseAuthority(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2]).toLowerCase(), port };
}
