// The REDIRECT inbound: connections that nftables redirected to our port, each
// handed to the proxy core with the destination it had before (SO_ORIGINAL_DST,
// read through the native addon). A connection that was not redirected (one
// made straight to the port) would loop back to us: it is closed and counted.
import net from 'node:net';
import type { ProxyCore } from './proxy-core.js';
import { inbound } from './explicit-proxy.js';
import { loadTunAddon } from '../tun/native-addon.js';

export class RedirectInbound {
  readonly counters = { accepted: 0, notRedirected: 0 };
  private readonly servers: net.Server[] = [];

  constructor(private readonly core: ProxyCore) {}

  /** Listens on 0.0.0.0:port and [::]:port (IPv6 only, so each family's original destination is read its own way). */
  async listen(port: number): Promise<void> {
    const addon = loadTunAddon();
    for (const host of ['0.0.0.0', '::']) {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
        socket.on('error', () => {});
        const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
        let dst: ReturnType<typeof addon.originalDst> = null;
        try {
          dst = fd === undefined || fd < 0 ? null : addon.originalDst(fd);
        } catch {
          dst = null;
        }
        if (!dst || (dst.port === port && dst.address === socket.localAddress)) {
          this.counters.notRedirected++;
          socket.destroy();
          return;
        }
        this.counters.accepted++;
        const conn = inbound('redirect', socket, dst.address, dst.port, () => {}, (how) => (how === 'forbidden' || how === 'rst' ? socket.resetAndDestroy() : socket.destroy()));
        this.core.handle(conn);
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, ipv6Only: host === '::', backlog: 4096 }, () => resolve());
      });
      this.servers.push(server);
    }
  }

  close(): void {
    for (const s of this.servers) s.close();
  }
}
