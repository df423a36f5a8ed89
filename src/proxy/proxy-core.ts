// The one place every inbound connection goes: decide, dial, relay, log.
// Today every connection goes direct to its original destination; rules,
// sniffing and upstream proxies plug in here without the stack knowing.
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log.js';
import type { Endpoint } from '../stack/contracts.js';
import type { InboundConnection } from './inbound.js';
import { DialError, dialDirect } from './upstream-dialer.js';
import { relay } from './relay.js';

export interface ProxyCoreOptions {
  log: Logger;
  /** Source address for direct dials (the uplink's in route-all mode). */
  localAddress?: string;
  connectTimeoutMs: number;
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
    const line = {
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
    dialDirect(conn.dst, { localAddress: this.opts.localAddress, timeoutMs: this.opts.connectTimeoutMs }).then(
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
      (err: DialError) => {
        this.counters.failed++;
        conn.reject(err.kind === 'refused' ? 'rst' : 'unreachable');
        finish(`upstream-${err.kind}`, err.message);
      },
    );
  }
}
