// The one place every inbound connection goes: decide, dial, relay, log.
// Today every connection goes direct to its original destination; rules,
// sniffing and upstream proxies plug in here without the stack knowing.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { Endpoint } from '../stack/contracts.js';
import type { InboundConnection } from './inbound.js';
import { DialError, dialDirect } from './upstream-dialer.js';
import { relay } from './relay.js';
import { serveDnsOverTcp } from './dns-over-tcp.js';

export interface ProxyCoreOptions {
  log: Logger;
  /** Source address for direct dials (the uplink's in route-all mode). */
  localAddress?: string;
  connectTimeoutMs: number;
  /** Resolves a hostname for dialling (per-host mode: through the resolvers the system had). */
  lookup?: (hostname: string) => Promise<string>;
  /** True for addresses of the fake-IP pool: without a hostname such a connection is stale. */
  isFakeAddress?: (address: string) => boolean;
  /**
   * The gateway's own DNS over TCP (clients retry there after a truncated answer);
   * address '*' takes port 53 of every destination (route-all's DNS hijack).
   */
  dnsOverTcp?: { address: string; answer: (query: Buffer) => Promise<Buffer | null> };
}

export interface ProxyCounters {
  active: number;
  total: number;
  failed: number;
  bytesUp: number;
  bytesDown: number;
}

export function endpointText(e: Endpoint): string {
  return e.family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export class ProxyCore {
  readonly counters: ProxyCounters = { active: 0, total: 0, failed: 0, bytesUp: 0, bytesDown: 0 };

  constructor(private readonly opts: ProxyCoreOptions) {}

  handle(conn: InboundConnection): void {
    const started = performance.now();
    this.counters.active++;
    this.counters.total++;
    const line: Record<string, unknown> = {
      id: conn.id,
      inbound: conn.inbound,
      proto: conn.protocol,
      src: endpointText(conn.src),
      dst: endpointText(conn.dst),
      host: conn.hostname,
      rule: 'default',
      action: 'direct',
    };
    const finish = (end: string, error?: string) => {
      const { up, down } = conn.counters();
      this.counters.active--;
      this.counters.bytesUp += up;
      this.counters.bytesDown += down;
      this.opts.log.info({ ...line, up, down, ms: Math.round(performance.now() - started), end, error }, 'conn');
    };
    const dns = this.opts.dnsOverTcp;
    if (dns && conn.dst.port === 53 && (conn.dst.address === dns.address || dns.address === '*')) {
      line.action = 'dns';
      serveDnsOverTcp(conn.accept(), dns.answer).then((end) => finish(end));
      return;
    }
    if (conn.hostname === undefined && this.opts.isFakeAddress?.(conn.dst.address)) {
      // A fake IP we no longer map (a client cached an old answer): refuse it.
      this.counters.failed++;
      conn.reject('rst');
      return finish('stale-fake-ip');
    }
    this.target(conn).then((dst) => dialDirect(dst, { localAddress: this.opts.localAddress, timeoutMs: this.opts.connectTimeoutMs })).then(
      (upstream) => {
        let client;
        try {
          client = conn.accept();
        } catch (e) {
          upstream.destroy();
          this.counters.failed++;
          return finish('client-gone', (e as Error).message);
        }
        relay(client, upstream).then((r) => finish(r.end, r.error));
      },
      (err: DialError | Error) => {
        this.counters.failed++;
        const kind = err instanceof DialError ? err.kind : 'unresolved';
        conn.reject(kind === 'refused' ? 'rst' : 'unreachable');
        finish(`upstream-${kind}`, err.message);
      },
    );
  }

  /** Where to dial: the original destination, or the real address of a mapped hostname. */
  private async target(conn: InboundConnection): Promise<Endpoint> {
    if (conn.hostname === undefined || !this.opts.lookup) return conn.dst;
    const address = await this.opts.lookup(conn.hostname);
    return { family: address.includes(':') ? 6 : 4, address, port: conn.dst.port };
  }
}
