// The one place every inbound connection goes: sniff, decide, dial, relay, log.
//
// Order of events for a TCP connection from the TUN:
//  - when the rules cannot be changed by what the client will say (no rule on
//    names or protocols ahead of the match), the upstream is dialled first and
//    the client's SYN-ACK is sent only once it stands (a refusal is a RST);
//  - otherwise the client is accepted, its first bytes are sniffed (TLS SNI,
//    HTTP Host, or opaque after a short timeout), the rules decide, and an
//    upstream failure resets the client (or answers 502 to HTTP).
// HTTP streams are then served request by request (header rules, 403, logs);
// everything else is relayed byte for byte.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { isIP } from 'node:net';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import type { Endpoint } from '../net/endpoint.js';
import type { InboundConnection } from './inbound.js';
import { DialError, dialDirect } from './upstream-dialer.js';
import { dialViaProxy } from './upstream-proxies.js';
import { relay } from './relay.js';
import { serveDnsOverTcp } from './dns-over-tcp.js';
import { Policy, type Decision } from './policy.js';
import { sniffStream, type Sniffed } from './sniff/sniff-stream.js';
import { forbidden, forwardRequest, type HttpExchange } from './http/http-forward.js';
import { relayHttp } from './http/http-relay.js';
import type { HeaderEdit } from './http/header-edits.js';
import type { MatchInput } from './rules/rule-types.js';
import { hostPort } from '../net/address.js';

export interface ProxyCoreOptions {
  log: Logger;
  /** Source address for direct dials (the uplink's in route-all mode). */
  localAddress?: string;
  /** For IPv6 destinations (the IPv6 uplink's); null: no IPv6 path, IPv6 dials fail at once. */
  localAddress6?: string | null;
  connectTimeoutMs: number;
  /** Resolves a hostname for dialling (per-host mode: through the resolvers the system had); family: the one the client used, tried first. */
  lookup?: (hostname: string, family?: 4 | 6) => Promise<string>;
  /** True for addresses of the fake-IP pool: without a hostname such a connection is stale. */
  isFakeAddress?: (address: string) => boolean;
  /**
   * The gateway's own DNS over TCP (clients retry there after a truncated answer);
   * address '*' takes port 53 of every destination (route-all's DNS hijack).
   */
  dnsOverTcp?: { address: string; answer: (query: Buffer) => Promise<Buffer | null> };
  /** Rules and upstreams; none means everything goes direct. */
  policy?: Policy;
  /** How long to wait for a client's first bytes (default 300 ms). */
  sniffTimeoutMs?: number;
  /** Serve HTTP request by request with a log line each (default true). */
  httpInspect?: boolean;
}

export interface ProxyCounters {
  active: number;
  total: number;
  failed: number;
  rejected: number;
  bytesUp: number;
  bytesDown: number;
  httpRequests: number;
}

export function endpointText(e: Endpoint): string {
  return hostPort(e.address, e.port);
}

const NO_RULES = new Policy([], new Map(), new Map());

/** Meant for the proxy itself, not the server. */
const PROXY_HEADERS: HeaderEdit[] = [
  { op: 'remove', name: 'proxy-connection' },
  { op: 'remove', name: 'proxy-authorization' },
];

/** An explicit-proxy client connection's kept-alive upstream agents, by target. */
const proxyAgents = new WeakMap<object, Map<string, http.Agent>>();

export class ProxyCore {
  readonly counters: ProxyCounters = { active: 0, total: 0, failed: 0, rejected: 0, bytesUp: 0, bytesDown: 0, httpRequests: 0 };
  readonly policy: Policy;
  private proxyRequestId = 1_000_000_000;
  private readonly sniffTimeoutMs: number;
  private readonly httpInspect: boolean;

  constructor(private readonly opts: ProxyCoreOptions) {
    this.policy = opts.policy ?? NO_RULES;
    this.sniffTimeoutMs = opts.sniffTimeoutMs ?? 300;
    this.httpInspect = opts.httpInspect ?? true;
  }

  handle(conn: InboundConnection): void {
    const started = performance.now();
    this.counters.active++;
    this.counters.total++;
    const line: Record<string, unknown> = {
      id: conn.id,
      inbound: conn.inbound,
      proto: 'tcp',
      src: endpointText(conn.src),
      dst: endpointText(conn.dst),
      host: conn.hostname,
      rule: 'default',
      action: 'direct',
    };
    let finished = false;
    const finish = (end: string, error?: string) => {
      if (finished) return;
      finished = true;
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
    this.run(conn, line, finish).catch((e: Error) => {
      this.counters.failed++;
      finish('internal-error', e.message);
    });
  }

  private async run(conn: InboundConnection, line: Record<string, unknown>, finish: (end: string, error?: string) => void): Promise<void> {
    const input: MatchInput = {
      hostname: conn.hostname,
      protocol: 'tcp',
      dstAddress: conn.dst.address,
      dstPort: conn.dst.port,
      srcAddress: conn.src.address,
    };
    const note = (d: Decision, s?: Sniffed) => {
      line.rule = d.rule;
      line.action = d.action;
      if (d.upstream) line.upstream = d.upstream.name;
      if (s) {
        line.proto = s.protocol;
        if (s.protocol === 'tls') {
          line.sni = s.host;
          if (s.alpn) line.alpn = s.alpn;
        }
        if (line.host === undefined && s.host !== undefined) line.host = s.host;
      }
    };

    if (this.policy.needsSniff(input)) {
      const client = conn.accept();
      const sniffed = await sniffStream(client, this.sniffTimeoutMs);
      const d = this.policy.decide({ ...input, hostname: conn.hostname ?? sniffed.host, protocol: sniffed.protocol });
      note(d, sniffed);
      if (d.action === 'reject') return this.refuse(client, sniffed, d, finish);
      const upstream = await this.dialOrAnswer(conn, d, finish, (err) => {
        if (sniffed.protocol === 'http') respondAndClose(client, 502, `Bad gateway: ${err.message}\n`);
        else resetClient(client);
      });
      if (upstream) return this.serve(conn, client, upstream, sniffed, input, finish);
      return;
    }

    const d = this.policy.decide(input);
    note(d);
    if (d.action === 'reject') {
      // explicit proxies refuse in their own terms (403, SOCKS5 "not allowed");
      // a TUN client is only told why when it speaks HTTP
      if (!this.httpInspect || conn.inbound !== 'tun') {
        this.counters.rejected++;
        conn.reject('forbidden');
        return finish('rejected');
      }
      // accepted only to tell HTTP clients why, with a 403
      const client = conn.accept();
      const sniffed = await sniffStream(client, this.sniffTimeoutMs);
      note(d, sniffed);
      return this.refuse(client, sniffed, d, finish);
    }
    const upstream = await this.dialOrAnswer(conn, d, finish, (_err, kind) => conn.reject(kind === 'refused' ? 'rst' : 'unreachable'));
    if (!upstream) return;
    let client: Duplex;
    try {
      client = conn.accept();
    } catch (e) {
      upstream.destroy();
      this.counters.failed++;
      return finish('client-gone', (e as Error).message);
    }
    let sniffed: Sniffed = { protocol: 'tcp', by: 'verdict' };
    if (this.httpInspect || this.policy.hasHeaderRules) {
      // the server may speak first (SSH, SMTP): then the stream is opaque at once
      const serverFirst = new AbortController();
      const onServer = () => serverFirst.abort();
      upstream.once('readable', onServer);
      sniffed = await sniffStream(client, this.sniffTimeoutMs, serverFirst.signal);
      upstream.off('readable', onServer);
      note(d, sniffed);
    }
    return this.serve(conn, client, upstream, sniffed, input, finish);
  }

  private async serve(
    conn: InboundConnection,
    client: Duplex,
    upstream: net.Socket,
    sniffed: Sniffed,
    input: MatchInput,
    finish: (end: string, error?: string) => void,
  ): Promise<void> {
    if (sniffed.protocol === 'http' && (this.httpInspect || this.policy.hasHeaderRules)) {
      const r = await relayHttp(client, upstream, {
        decide: (req) =>
          this.policy.requestVerdict({ ...input, protocol: 'http', hostname: conn.hostname ?? req.host ?? sniffed.host }),
        onExchange: (e) => this.logRequest(conn, e),
      });
      if (r.end === 'rejected') this.counters.rejected++;
      return finish(r.end, r.error);
    }
    const r = await relay(client, upstream);
    finish(r.end, r.error);
  }

  private refuse(client: Duplex, sniffed: Sniffed, d: Decision, finish: (end: string, error?: string) => void): void {
    this.counters.rejected++;
    if (sniffed.protocol === 'http') respondAndClose(client, 403, forbidden(d.rule));
    else resetClient(client);
    finish('rejected');
  }

  private logRequest(conn: Pick<InboundConnection, 'id' | 'src' | 'dst'>, e: HttpExchange): void {
    this.counters.httpRequests++;
    this.opts.log.info({ id: conn.id, src: endpointText(conn.src), dst: endpointText(conn.dst), ...e }, 'http');
  }

  /**
   * An explicit-proxy request with an absolute URI: decided by the rules on its
   * own, and forwarded over a kept-alive upstream connection per target of
   * the client's proxy connection.
   */
  forwardProxyRequest(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    target: { src: Endpoint; host: string; port: number; path: string },
  ): void {
    const id = this.proxyRequestId++;
    const dst: Endpoint = { family: isIP(target.host) === 6 ? 6 : 4, address: target.host, port: target.port };
    const conn = { id, src: target.src, dst, hostname: isIP(target.host) ? undefined : target.host };
    const input: MatchInput = { hostname: conn.hostname, protocol: 'http', dstAddress: target.host, dstPort: target.port, srcAddress: target.src.address };
    const d = this.policy.decide(input);
    const verdict = { rule: d.rule, action: d.action, reject: d.action === 'reject', edits: [...PROXY_HEADERS, ...d.edits] };
    if (verdict.reject) this.counters.rejected++;
    let agents = proxyAgents.get(req.socket);
    if (!agents) {
      const m = (agents = new Map());
      proxyAgents.set(req.socket, m);
      req.socket.once('close', () => {
        for (const a of m.values()) a.destroy();
      });
    }
    const key = `${d.upstream?.name ?? ''}|${target.host}|${target.port}`;
    let agent = agents.get(key);
    if (!agent) {
      agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
      (agent as unknown as { createConnection: unknown }).createConnection = (_o: unknown, cb: (err: Error | null, s?: net.Socket) => void) => {
        this.dial(conn, d).then((s) => cb(null, s), (e: Error) => cb(e));
        return undefined;
      };
      agents.set(key, agent);
    }
    forwardRequest(req, res, agent, verdict, (e) => this.logRequest({ id, src: target.src, dst }, { ...e, host: e.host ?? target.host }), target.path);
  }

  /** dial(), or on failure: count it, let `answer` tell the client, log the end, and give null. */
  private async dialOrAnswer(
    conn: InboundConnection,
    d: Decision,
    finish: (end: string, error?: string) => void,
    answer: (err: Error, kind: DialError['kind'] | 'unresolved') => void,
  ): Promise<net.Socket | null> {
    try {
      return await this.dial(conn, d);
    } catch (e) {
      const err = e as Error;
      const kind = err instanceof DialError ? err.kind : 'unresolved';
      this.counters.failed++;
      answer(err, kind);
      finish(`upstream-${kind}`, err.message);
      return null;
    }
  }

  /** Opens the upstream side: direct (the real address of a mapped name), or through the rule's proxy. */
  private async dial(conn: Pick<InboundConnection, 'dst' | 'hostname'>, d: Decision): Promise<net.Socket> {
    const timeoutMs = this.opts.connectTimeoutMs;
    const { localAddress, localAddress6 } = this.opts;
    if (d.upstream) {
      return dialViaProxy(d.upstream, { host: conn.hostname ?? conn.dst.address, port: conn.dst.port }, { localAddress, localAddress6, timeoutMs });
    }
    return dialDirect(await this.target(conn), { localAddress, localAddress6, timeoutMs });
  }

  /** Where to dial: the original destination, or the real address of a mapped hostname. */
  private async target(conn: Pick<InboundConnection, 'dst' | 'hostname'>): Promise<Endpoint> {
    if (conn.hostname === undefined || !this.opts.lookup || !this.opts.isFakeAddress?.(conn.dst.address)) return conn.dst;
    const address = await this.opts.lookup(conn.hostname, conn.dst.family);
    return { family: isIP(address) === 6 ? 6 : 4, address, port: conn.dst.port };
  }
}

function respondAndClose(client: Duplex, status: 403 | 502, body: string): void {
  const reason = status === 403 ? 'Forbidden' : 'Bad Gateway';
  client.on('error', () => {});
  client.resume(); // what the client sent is read and dropped
  client.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Aborts the client's connection with a RST. */
function resetClient(client: Duplex): void {
  client.on('error', () => {});
  const c = client as Duplex & { resetAndDestroy?: () => void };
  if (typeof c.resetAndDestroy === 'function') c.resetAndDestroy();
  else client.destroy(new Error('rejected'));
}
