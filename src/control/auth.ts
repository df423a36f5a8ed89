// Who may use the control API: with a secret, a request must carry it, as
// the Clash dashboards send it (`Authorization: Bearer SECRET`, or
// `?token=SECRET` on a WebSocket, which a browser cannot give headers).
// Compared in constant time over digests, so neither the length nor a
// prefix leaks through timing. Without a secret (loopback only), a request
// must name the listener by an address, not a domain: a web page that
// rebinds its own name to 127.0.0.1 cannot reach the API through it.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function sameSecret(given: string, secret: string): boolean {
  return timingSafeEqual(digest(given), digest(secret));
}

/** The credential a request carries: the bearer header, or on a WebSocket upgrade the token parameter. */
export function credentialOf(req: IncomingMessage, url: URL): string | undefined {
  const h = req.headers.authorization;
  if (h !== undefined) {
    const m = /^Bearer\s+(.*)$/i.exec(h);
    return m ? m[1] : h;
  }
  if (req.headers.upgrade?.toLowerCase() === 'websocket') return url.searchParams.get('token') ?? undefined;
  return undefined;
}

/** The Host header names the listener by address (127.0.0.1:9090, [::1]:9090) or as localhost. */
export function hostIsAddress(req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (host === undefined) return true; // HTTP/1.0: no name to rebind
  const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return name === 'localhost' || isIP(name) !== 0;
}

export type AuthVerdict = 'ok' | 'unauthorized' | 'misdirected';

export function authorize(req: IncomingMessage, url: URL, secret: string | undefined): AuthVerdict {
  if (secret === undefined) return hostIsAddress(req) ? 'ok' : 'misdirected';
  const given = credentialOf(req, url);
  return given !== undefined && sameSecret(given, secret) ? 'ok' : 'unauthorized';
}
