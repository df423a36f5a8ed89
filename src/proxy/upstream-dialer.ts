// Opens the upstream side of a proxied connection. Direct dials bind to the
// uplink source address: the route-all policy rule sends sockets bound there
// through the main table, so the gateway never loops back into its own TUN.
import net, { isIP } from 'node:net';
import type { Endpoint } from '../stack/contracts.js';

export interface DialOptions {
  /** Source address to bind (the uplink's), or undefined to let the kernel choose. */
  localAddress?: string;
  timeoutMs: number;
}

export class DialError extends Error {
  constructor(
    message: string,
    /** refused: the server answered RST; unreachable: no route/host; timeout: nothing answered. */
    readonly kind: 'refused' | 'unreachable' | 'timeout' | 'error',
    readonly code?: string,
  ) {
    super(message);
  }
}

export function classifyDialError(err: NodeJS.ErrnoException): DialError['kind'] {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
      return 'unreachable';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'error';
  }
}

export function dialDirect(dst: Endpoint, opts: DialOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({
      host: dst.address,
      port: dst.port,
      // a name (explicit proxy) is resolved by the system, either family
      family: isIP(dst.address) ? dst.family : undefined,
      localAddress: opts.localAddress,
      noDelay: true,
      allowHalfOpen: true,
    });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new DialError(`connect to ${dst.address}:${dst.port} timed out after ${opts.timeoutMs} ms`, 'timeout'));
    }, opts.timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new DialError(err.message, classifyDialError(err), err.code));
    });
  });
}
