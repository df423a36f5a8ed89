// Prometheus metrics (prom-client) on a loopback address, off by default.
// Values are read from the live counters when scraped: nothing on the packet
// path touches prom-client.
import http from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ProxyCore } from '../proxy/proxy-core.js';

export interface MetricSources {
  /** The proxy core's counters and rule hits (with stack workers: summed over them, workers/worker-pool.ts). */
  proxy: Pick<ProxyCore, 'counters'> & { policy: { hits: ReadonlyMap<string, number> } };
  /** The stack's counters and drops by reason (absent for the explicit proxy alone). */
  stack?: () => { counters: Record<string, number>; drops: Record<string, number> };
}

/** A counter whose value is copied from a running total at scrape time. */
function mirrored(registry: Registry, name: string, help: string, labelNames: string[], read: () => [Record<string, string>, number][]) {
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, v] of read()) if (v > 0) this.inc(labels, v);
    },
  });
}

export function metricsRegistry(src: MetricSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tunsteer_process_' });
  const p = src.proxy.counters;
  new Gauge({
    name: 'tunsteer_connections_active',
    help: 'Proxied connections open now',
    registers: [registry],
    collect() {
      this.set(p.active);
    },
  });
  mirrored(registry, 'tunsteer_connections_total', 'Proxied connections since start, by outcome', ['outcome'], () => [
    [{ outcome: 'all' }, p.total],
    [{ outcome: 'failed' }, p.failed],
    [{ outcome: 'rejected' }, p.rejected],
  ]);
  mirrored(registry, 'tunsteer_bytes_total', 'Bytes relayed, by direction', ['direction'], () => [
    [{ direction: 'up' }, p.bytesUp],
    [{ direction: 'down' }, p.bytesDown],
  ]);
  mirrored(registry, 'tunsteer_http_requests_total', 'HTTP requests served', [], () => [[{}, p.httpRequests]]);
  mirrored(registry, 'tunsteer_rule_hits_total', 'Decisions by rule', ['rule'], () => [...src.proxy.policy.hits].map(([rule, n]) => [{ rule }, n]));
  const stack = src.stack;
  if (stack) {
    mirrored(registry, 'tunsteer_packets_total', 'Packets through the TUN, by direction', ['direction'], () => {
      const c = stack().counters;
      return [
        [{ direction: 'in' }, c.packetsIn],
        [{ direction: 'out' }, c.packetsOut],
      ];
    });
    mirrored(registry, 'tunsteer_drops_total', 'Packets dropped, by reason', ['reason'], () => Object.entries(stack().drops).map(([reason, n]) => [{ reason }, n]));
    mirrored(registry, 'tunsteer_tcp_retransmissions_total', 'TCP segments retransmitted to clients', [], () => [[{}, stack().counters.retransmits]]);
    mirrored(registry, 'tunsteer_tcp_syn_refused_total', 'SYNs answered with RST over a limit', [], () => [[{}, stack().counters.synRefused]]);
  }
  return registry;
}

export function serveMetrics(addr: { host: string; port: number }, registry: Registry): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => resolve(server));
  });
}
