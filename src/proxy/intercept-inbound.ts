// The REDIRECT and TPROXY inbounds: connections that nftables sent to our
// port, each handed to the proxy core with the destination the client
// addressed. REDIRECT rewrote it, so it is read back (SO_ORIGINAL_DST /
// IP6T_SO_ORIGINAL_DST, through the native addon); TPROXY kept it, so it is
// the accepted socket's own local address (the listener is IP_TRANSPARENT).
// A connection made straight to the port would loop back to us: it is closed
// and counted.
import net from 'node:net';
import type { ProxyCore } from './proxy-core.js';
import { inbound } from './explicit-proxy.js';
import { loadTunAddon } from '../tun/native-addon.js';

type Kind = 'redirect' | 'tproxy';
const BACKLOG = 4096;

export class InterceptInbound {
  readonly counters = { accepted: 0, notIntercepted: 0 };
  private readonly servers: net.Server[] = [];

  constructor(
    private readonly core: ProxyCore,
    private readonly kind: Kind,
  ) {}

  /**
   * Listens on 0.0.0.0:port and [::]:port, IPv6 only, so each family's
   * destination is read its own way. TPROXY's IP_TRANSPARENT needs
   * CAP_NET_ADMIN: call this before dropping root.
   */
  async listen(port: number): Promise<void> {
    const addon = loadTunAddon();
    for (const [host, family] of [
      ['0.0.0.0', 4],
      ['::', 6],
    ] as const) {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onSocket(socket, port));
      const target = this.kind === 'tproxy' ? { fd: addon.transparentListener(host, port, family, BACKLOG) } : { host, port, ipv6Only: family === 6, backlog: BACKLOG };
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(target, () => resolve());
      });
      this.servers.push(server);
    }
  }

  close(): void {
    for (const s of this.servers) s.close();
  }

  private onSocket(socket: net.Socket, port: number): void {
    socket.on('error', () => {});
    const dst = this.kind === 'tproxy' ? { address: socket.localAddress ?? '', port: socket.localPort ?? 0 } : originalDst(socket);
    if (!dst || !dst.address || (dst.port === port && isLocalListener(dst.address, socket))) {
      this.counters.notIntercepted++;
      socket.destroy();
      return;
    }
    this.counters.accepted++;
    // the kernel has accepted already: whatever the refusal, the client is reset (a FIN would
    // read as a complete, empty answer)
    const conn = inbound(
      this.kind,
      socket,
      dst.address,
      dst.port,
      () => {},
      () => socket.resetAndDestroy(),
    );
    this.core.handle(conn);
  }
}

function originalDst(socket: net.Socket): { address: string; port: number } | null {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) return null;
  try {
    return loadTunAddon().originalDst(fd);
  } catch {
    return null;
  }
}

/** A destination of our own port on an address of this host: the client came straight to the listener. */
function isLocalListener(address: string, socket: net.Socket): boolean {
  return address === socket.localAddress || address === '127.0.0.1' || address === '::1';
}
