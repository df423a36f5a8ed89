// Opens the upstream side of a proxied connection. Direct dials bind to the
// uplink source address: the route-all policy rule sends sockets bound there
// through the main table, so the gateway never loops back into its own TUN.
// IPv6 destinations bind the IPv6 uplink's address (localAddress6) the same
// way; when route-all found no IPv6 uplink (null) they are refused at once,
// since ::/0 goes into the TUN and an unbound socket would loop. The bind takes
// no port (upstream-socket.ts): the port is chosen per destination at connect.
import net, { isIP } from 'node:net';
import { lookup } from 'node:dns/promises';
import type { Endpoint } from '../net/endpoint.js';
import { boundSocket } from './upstream-socket.js';

export interface DialOptions {
  /**
   * Source address to bind for IPv4 destinations (the uplink's), or undefined to let the kernel choose;
   * null: there is no IPv4 uplink now (route-all, the network gone), refuse them as the kernel would (ENETUNREACH).
   */
  localAddress?: string | null;
  /** The same for IPv6 destinations; null: there is no direct IPv6 path (route-all without an IPv6 uplink), refuse them. */
  localAddress6?: string | null;
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

/** Every connected upstream socket not yet closed: after a suspend the data plane probes them (keepalive). */
export const liveUpstreams = new Set<net.Socket>();

function forgetUpstream(this: net.Socket): void {
  liveUpstreams.delete(this);
}

/** The source address for a destination: by its family; a name goes with the IPv4 one, as before. */
export function localAddressFor(dst: Endpoint, opts: Pick<DialOptions, 'localAddress' | 'localAddress6'>): string | null | undefined {
  return isIP(dst.address) === 6 ? opts.localAddress6 : opts.localAddress;
}

export function dialDirect(dst: Endpoint, opts: DialOptions): Promise<net.Socket> {
  // a name (explicit proxy, an upstream proxy's host) with per-family source addresses (route-all):
  // resolve it here, so each address is dialled from its own family's source
  if (!isIP(dst.address) && opts.localAddress6 !== undefined) return dialName(dst, opts);
  const localAddress = localAddressFor(dst, opts);
  if (localAddress === null) {
    const what =
      isIP(dst.address) === 6
        ? `[${dst.address}]:${dst.port}: no IPv6 uplink (the host has no IPv6 default route)`
        : `${dst.address}:${dst.port}: no uplink (the host has no default route)`;
    return Promise.reject(new DialError(`connect to ${what}`, 'unreachable', 'ENETUNREACH'));
  }
  let bound: net.Socket | null = null;
  if (localAddress && isIP(dst.address)) {
    try {
      bound = boundSocket(localAddress, dst.family);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return Promise.reject(new DialError(`connect to ${dst.address}:${dst.port} from ${localAddress}: ${err.message}`, classifyDialError(err), err.code));
    }
  }
  return new Promise((resolve, reject) => {
    const sock = bound
      ? bound.connect({ host: dst.address, port: dst.port })
      : net.connect({
          host: dst.address,
          port: dst.port,
          // a name (explicit proxy) is resolved by the system, either family
          family: isIP(dst.address) ? dst.family : undefined,
          localAddress,
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
      liveUpstreams.add(sock);
      // a module-level listener (on: close comes once; once() would add a wrapper and a bound function per socket): a closure here would keep this dial's scope (its timer, options) for the connection's life
      sock.on('close', forgetUpstream);
      resolve(sock);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new DialError(err.message, classifyDialError(err), err.code));
    });
  });
}

/**
 * Resolves a name and dials its addresses in the resolver's order, at most one
 * per family (IPv6 skipped when it has no path), each bound to its family's
 * source address. The first to connect wins; the last error is reported.
 */
async function dialName(dst: Endpoint, opts: DialOptions): Promise<net.Socket> {
  let addrs: { address: string; family: number }[];
  try {
    addrs = await lookup(dst.address, { all: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new DialError(`${dst.address}: ${err.message}`, classifyDialError(err), err.code);
  }
  const tried = new Set<number>();
  let last: unknown = new DialError(`${dst.address}: no IPv4 address, and IPv6 has no path`, 'unreachable', 'ENETUNREACH');
  for (const a of addrs) {
    if (tried.has(a.family) || (a.family === 6 && opts.localAddress6 === null)) continue;
    tried.add(a.family);
    try {
      return await dialDirect({ family: a.family === 6 ? 6 : 4, address: a.address, port: dst.port }, opts);
    } catch (e) {
      last = e;
    }
  }
  throw last;
}
