// TLS origination for a set-header rule with `upstream_tls`: the program
// speaks plain HTTP to the gateway, the gateway speaks HTTPS to the
// destination and checks its certificate against the name (the system's CA
// store, or the rule's CA file), so the injected secret never crosses the
// network in clear and reaches only a server that proves it is that name.
import tls from 'node:tls';
import type net from 'node:net';
import { DialError } from './upstream-dialer.js';

export function originateTls(raw: net.Socket, servername: string, ca: string | undefined, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket: raw, servername, ...(ca !== undefined ? { ca } : {}), ALPNProtocols: ['http/1.1'], rejectUnauthorized: true });
    const timer = setTimeout(() => fail(new DialError(`TLS to ${servername}: no handshake after ${timeoutMs} ms`, 'timeout')), timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      s.destroy();
      raw.destroy();
      reject(e instanceof DialError ? e : new DialError(`TLS to ${servername}: ${e.message}`, 'error', (e as NodeJS.ErrnoException).code));
    };
    s.once('error', fail);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      s.off('error', fail);
      // the relay resets upstreams it gives up on: a TLS socket resets the TCP connection under it
      (s as net.Socket).resetAndDestroy = () => {
        raw.resetAndDestroy();
        s.destroy();
        return s;
      };
      resolve(s);
    });
  });
}

/** True when the certificate this TLS connection got is valid for `name` too (a later request on it). */
export function certificateCovers(s: tls.TLSSocket, name: string): boolean {
  const cert = s.getPeerCertificate();
  return cert !== null && Object.keys(cert).length > 0 && tls.checkServerIdentity(name, cert) === undefined;
}
