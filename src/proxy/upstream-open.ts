// Opens the upstream side of a proxied connection under a decision: direct
// (to the real address of a fake IP's name), or through the rule's proxy;
// over TLS the gateway originates when the rule says upstream_tls. It also
// says where the connection really goes (a name the gateway or its proxy
// resolved, the address the client chose, a checked certificate), which the
// secret-header check needs (request-policy.ts).
import { isIP } from 'node:net';
import type net from 'node:net';
import type { Endpoint } from '../stack/contracts.js';
import type { InboundConnection } from './inbound.js';
import type { Decision } from './policy.js';
import type { Dialled } from './request-policy.js';
import { DialError, dialDirect } from './upstream-dialer.js';
import { dialViaProxy } from './upstream-proxies.js';
import { originateTls } from './upstream-tls.js';

export interface Opened {
  socket: net.Socket;
  dialled: Dialled;
}

export interface OpenOptions {
  localAddress?: string | null;
  localAddress6?: string | null;
  connectTimeoutMs: number;
  /** The real address of a fake IP's name; family: the one the client used, tried first. */
  lookup?: (hostname: string, family?: 4 | 6) => Promise<string>;
  isFakeAddress?: (address: string) => boolean;
}

/** Dials for `d`; over TLS to `tlsName` (on the rule's port) when the rule originates TLS. */
export async function openUpstream(conn: Pick<InboundConnection, 'dst' | 'hostname'>, d: Decision, tlsName: string | undefined, o: OpenOptions): Promise<Opened> {
  const timeoutMs = o.connectTimeoutMs;
  const { localAddress, localAddress6 } = o;
  const port = d.upstreamTls && tlsName !== undefined ? d.upstreamTls.port : conn.dst.port;
  let socket: net.Socket;
  let dialled: Dialled;
  if (d.upstream) {
    const host = conn.hostname ?? conn.dst.address;
    socket = await dialViaProxy(d.upstream, { host, port }, { localAddress, localAddress6, timeoutMs });
    dialled = isIP(host) ? { address: host } : { name: host };
  } else {
    const target = await targetOf(conn, o);
    socket = await dialDirect({ ...target, port }, { localAddress, localAddress6, timeoutMs });
    // a name we resolved ourselves (a fake IP's, or one an explicit-proxy client gave), or the address the client chose
    dialled = conn.hostname !== undefined ? { name: conn.hostname, address: socket.remoteAddress } : { address: target.address };
  }
  if (d.upstreamTls && tlsName !== undefined) {
    const tls = await originateTls(socket, tlsName, d.upstreamTls.ca, timeoutMs);
    return { socket: tls, dialled: { ...dialled, tls } };
  }
  return { socket, dialled };
}

/** Where to dial: the original destination, or the real address of a mapped hostname. */
async function targetOf(conn: Pick<InboundConnection, 'dst' | 'hostname'>, o: OpenOptions): Promise<Endpoint> {
  if (conn.hostname === undefined || !o.lookup || !o.isFakeAddress?.(conn.dst.address)) return conn.dst;
  const address = await o.lookup(conn.hostname, conn.dst.family);
  return { family: isIP(address) === 6 ? 6 : 4, address, port: conn.dst.port };
}

/** How long a dial whose source address vanished waits for the supervisor to hand over the new one (it takes 100 to 250 ms). */
const ADDR_GONE_WAIT_MS = 1000;

/**
 * A dial, and once more when the source address it bound has just gone (EADDRNOTAVAIL: the uplink
 * changed, as with a new DHCP lease, and the supervisor is handing over the new one): as soon as the
 * local addresses change, at most ADDR_GONE_WAIT_MS later, as a kernel-path connect would simply use
 * the new one. `options` is read at each attempt: the addresses now.
 */
export async function openOnceMore(dial: (o: OpenOptions) => Promise<Opened>, options: () => OpenOptions): Promise<Opened> {
  const first = options();
  try {
    return await dial(first);
  } catch (e) {
    if (!(e instanceof DialError && e.code === 'EADDRNOTAVAIL')) throw e;
    const same = () => {
      const now = options();
      return now.localAddress === first.localAddress && now.localAddress6 === first.localAddress6;
    };
    for (let waited = 0; waited < ADDR_GONE_WAIT_MS && same(); waited += 20) await new Promise((r) => setTimeout(r, 20));
    return dial(options());
  }
}
