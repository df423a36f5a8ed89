// Dials a destination through a configured upstream proxy: SOCKS5 (the `socks`
// library) or HTTP CONNECT (Node's own HTTP client). The TCP connection to the
// proxy itself is made by dialDirect, so in route-all mode it is bound to the
// uplink address like any direct dial and never loops into the TUN.
import http from 'node:http';
import { isIP } from 'node:net';
import type net from 'node:net';
import { DialError, dialDirect, type DialOptions } from './upstream-dialer.js';

export interface UpstreamProxy {
  name: string;
  type: 'socks5' | 'http';
  host: string;
  port: number;
  username?: string;
  /** Read from the environment or a file at config load; never logged. */
  password?: string;
}

/** Where to go through the proxy: a name (the proxy resolves it) or an address. */
export interface ProxyTarget {
  host: string;
  port: number;
}

export async function dialViaProxy(proxy: UpstreamProxy, target: ProxyTarget, opts: DialOptions): Promise<net.Socket> {
  const family = isIP(proxy.host);
  const sock = await dialDirect({ family: family === 6 ? 6 : 4, address: proxy.host, port: proxy.port }, opts).catch((e: DialError) => {
    throw new DialError(`upstream ${proxy.name} (${proxy.type}) at ${proxy.host}:${proxy.port}: ${e.message}`, e.kind, e.code);
  });
  try {
    return proxy.type === 'socks5' ? await socks5Connect(sock, proxy, target, opts.timeoutMs) : await httpConnect(sock, proxy, target, opts.timeoutMs);
  } catch (e) {
    sock.destroy();
    throw e;
  }
}

const SOCKS_REPLY_KIND: Record<string, DialError['kind']> = {
  ConnectionRefused: 'refused',
  HostUnreachable: 'unreachable',
  NetworkUnreachable: 'unreachable',
  TTLExpired: 'timeout',
};

async function socks5Connect(sock: net.Socket, proxy: UpstreamProxy, target: ProxyTarget, timeoutMs: number): Promise<net.Socket> {
  try {
    // loaded on the first SOCKS5 dial: 8 MB of memory a gateway without a SOCKS5 upstream never needs
    const { SocksClient } = await import('socks');
    const { socket } = await SocksClient.createConnection({
      proxy: { host: proxy.host, port: proxy.port, type: 5, userId: proxy.username, password: proxy.password },
      destination: { host: target.host, port: target.port },
      command: 'connect',
      timeout: timeoutMs,
      existing_socket: sock,
    });
    return socket as net.Socket;
  } catch (e) {
    const msg = (e as Error).message;
    const reply = /- (\w+)$/.exec(msg)?.[1] ?? '';
    const kind = SOCKS_REPLY_KIND[reply] ?? (/timed out/i.test(msg) ? 'timeout' : 'refused');
    throw new DialError(`upstream ${proxy.name} (socks5): ${msg}`, kind);
  }
}

function httpConnect(sock: net.Socket, proxy: UpstreamProxy, target: ProxyTarget, timeoutMs: number): Promise<net.Socket> {
  const authority = isIP(target.host) === 6 ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
  const headers: Record<string, string> = { host: authority };
  if (proxy.username !== undefined) {
    headers['proxy-authorization'] = `Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ''}`).toString('base64')}`;
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ method: 'CONNECT', path: authority, headers, createConnection: () => sock });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new DialError(`upstream ${proxy.name} (http): CONNECT ${authority} timed out after ${timeoutMs} ms`, 'timeout'));
    }, timeoutMs);
    req.once('connect', (res, socket, head) => {
      clearTimeout(timer);
      if (res.statusCode !== 200) {
        socket.destroy();
        // 504 is the proxy's own timeout; anything else refuses the destination
        const kind = res.statusCode === 504 ? 'timeout' : 'refused';
        return reject(new DialError(`upstream ${proxy.name} (http): CONNECT ${authority} answered ${res.statusCode} ${res.statusMessage ?? ''}`.trim(), kind));
      }
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.once('response', (res) => {
      // a proxy that answers CONNECT with a plain response does not tunnel
      clearTimeout(timer);
      res.resume();
      req.destroy();
      reject(new DialError(`upstream ${proxy.name} (http): CONNECT ${authority} answered ${res.statusCode}`, 'refused'));
    });
    req.once('error', (e) => {
      clearTimeout(timer);
      reject(new DialError(`upstream ${proxy.name} (http): ${e.message}`, 'error'));
    });
    req.end();
  });
}
