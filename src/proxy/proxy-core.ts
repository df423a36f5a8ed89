// The one place every inbound connection goes: sniff, decide, dial, relay, log.
//
// Order of events for a TCP connection from the TUN:
//  - when the rules cannot be changed by what the client will say (no rule on
//    names or protocols ahead of the match), the upstream is dialled first and
//    the client's SYN-ACK is sent only once it stands (a refusal is a RST);
//  - otherwise the client is accepted, its first bytes are sniffed (TLS SNI,
//    HTTP Host, opaque, or unknown when the budget runs out), the rules decide,
//    and an upstream failure resets the client (or answers 502 to HTTP).
// HTTP streams are then served request by request (each decided on its own
// Host, see request-policy.ts); everything else is relayed byte for byte.
//
// A fake IP stands for one name: when the SNI or Host says another, the
// connection is reset (TLS, opaque) or answered 421 (HTTP), with a log line.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../net/endpoint.js';
import type { InboundConnection } from './inbound.js';
import { DialError } from './upstream-dialer.js';
import { openOnceMore, openUpstream, type Opened, type OpenOptions } from './upstream-open.js';
import { relay } from './relay.js';
import { serveDnsOverTcp } from './dns-over-tcp.js';
import { Policy, type Decision } from './policy.js';
import { sniffStream, type Sniffed } from './sniff/sniff-stream.js';
import { forbidden, type HttpExchange, type HttpRequestInfo } from './http/http-forward.js';
import { EXPLICIT_NO_OWNER, forwardExplicit, type ProxyTarget } from './explicit-forward.js';
import { relayHttp } from './http/http-relay.js';
import type { MatchInput } from './rules/rule-types.js';
import { DestinationCheck, resolverLookup } from './destination-check.js';
import { requestDecider, type RequestContext } from './request-policy.js';
import { hostPort } from '../net/address.js';
import { ownerFields, type OwnerAnswer } from './owner-lookup.js';
import { CLOSED_BY_CONTROL, ConnectionRegistry, type TrackedConnection } from './connection-registry.js';
import type { CoreSettings, ProxyCoreOptions, ProxyCounters } from './proxy-core-options.js';
import { resetClient, respondAndClose } from './client-replies.js';
import { noteDecision } from './connection-line.js';

export type { CoreSettings, ProxyCoreOptions, ProxyCounters } from './proxy-core-options.js';

export function endpointText(e: Endpoint): string {
  return hostPort(e.address, e.port);
}

const NO_RULES = new Policy([], new Map(), new Map());

type Finish = (end: string, error?: string) => void;

/** The settings as a connection reads them: httpInspect forced on by the rules, and whether a sniff serves only the log. */
type LiveSettings = CoreSettings & { httpInspectAsked: boolean; sniffOnlyToLog: boolean };

export class ProxyCore {
  readonly counters: ProxyCounters = { active: 0, total: 0, failed: 0, rejected: 0, bytesUp: 0, bytesDown: 0, httpRequests: 0, fakeIpMismatch: 0, secretWithheld: 0 };
  /** The connections open now, for the control API: listed, and closed from outside. */
  readonly connections = new ConnectionRegistry();
  private proxyRequestId = 1_000_000_000;
  /** An HTTP exchange whose line is not written (info is off) is only counted: its fields are not built. */
  private readonly quietRequests = {
    now: () => !this.opts.log.isLevelEnabled('info'),
    count: () => void this.counters.httpRequests++,
  };
  /** How to finish each connection not yet logged (finishAll). */
  private readonly unlogged = new Set<(end: string) => void>();
  private readonly destinations: DestinationCheck;
  /** Swapped whole by reconfigure(); a connection reads it once, when it is decided. */
  private live: LiveSettings;

  constructor(private readonly opts: ProxyCoreOptions) {
    this.live = this.settle({
      policy: opts.policy ?? NO_RULES,
      sniffTimeoutMs: opts.sniffTimeoutMs ?? 300,
      httpInspect: opts.httpInspect ?? true,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
    this.destinations = opts.destinations ?? new DestinationCheck(resolverLookup(() => ({ localAddress: opts.localAddress, localAddress6: opts.localAddress6 })));
  }

  /** The rules new connections and new HTTP requests are decided by. */
  get policy(): Policy {
    return this.live.policy;
  }

  /** The settings a reload gave, as they stand (httpInspect as asked, before the rules force it on). */
  get settings(): CoreSettings {
    const { policy, sniffTimeoutMs, httpInspectAsked, connectTimeoutMs } = this.live;
    return { policy, sniffTimeoutMs, httpInspect: httpInspectAsked, connectTimeoutMs };
  }

  /**
   * A reload: the new rules, upstreams, header values and timeouts, swapped in
   * one assignment. Connections already decided keep the decision (and the
   * upstream) they were made with; their next HTTP request is decided by the
   * new rules, and answered 421 if those would send it another way.
   */
  reconfigure(next: CoreSettings): void {
    this.live = this.settle(next);
  }

  private settle(c: CoreSettings): LiveSettings {
    // every HTTP request is read when a rule depends on names or edits headers, whatever was asked
    const rulesRead = c.policy.namesMatter || c.policy.hasHeaderRules;
    return { ...c, httpInspectAsked: c.httpInspect, httpInspect: c.httpInspect || rulesRead, sniffOnlyToLog: !rulesRead };
  }

  handle(inbound: InboundConnection): void {
    const started = performance.now();
    this.counters.active++;
    this.counters.total++;
    const line: Record<string, unknown> = {
      id: inbound.id,
      inbound: inbound.inbound,
      proto: 'tcp',
      src: endpointText(inbound.src),
      dst: endpointText(inbound.dst),
      host: inbound.hostname,
      rule: 'default',
      action: 'direct',
    };
    const conn = this.connections.track(inbound, line);
    const fake = this.opts.isFakeAddress?.(conn.dst.address) === true;
    let finished = false;
    const finish: Finish = (end, error) => {
      if (finished) return;
      finished = true;
      this.unlogged.delete(finish);
      this.connections.forget(conn);
      if (conn.closed) end = CLOSED_BY_CONTROL;
      const { up, down } = conn.counters();
      this.counters.active--;
      this.counters.bytesUp += up;
      this.counters.bytesDown += down;
      if (fake) this.opts.fakeAddressUsed?.(conn.dst.address);
      // the line is built only when its level is written: the benches and many users run at warn
      if (this.opts.log.isLevelEnabled('info')) this.opts.log.info({ ...line, up, down, ms: Math.round(performance.now() - started), end, error }, 'conn');
    };
    this.unlogged.add(finish);
    const dns = this.opts.dnsOverTcp;
    if (dns && conn.dst.port === 53 && (conn.dst.address === dns.address || dns.address === '*')) {
      line.action = 'dns';
      serveDnsOverTcp(conn.accept(), dns.answer, dns.idleMs).then(
        (end) => finish(end),
        (e: Error) => finish('internal-error', e.message),
      );
      return;
    }
    if (conn.hostname === undefined && fake) {
      // A fake IP we no longer map (a client cached an old answer): refuse it.
      this.counters.failed++;
      conn.reject('rst');
      return finish('stale-fake-ip');
    }
    this.run(conn, fake ? conn.hostname : undefined, line, finish).catch((e: Error) => {
      this.counters.failed++;
      finish('internal-error', e.message);
    });
  }

  /**
   * Writes the line of every connection still open, with this end, now: for
   * a process about to go (the gateway stopping), whose sockets go with it.
   * What the connections do afterwards logs nothing more.
   */
  finishAll(end: string): void {
    for (const finish of [...this.unlogged]) finish(end);
  }

  private async run(conn: TrackedConnection, fakeName: string | undefined, line: Record<string, unknown>, finish: Finish): Promise<void> {
    const input: MatchInput = {
      hostname: conn.hostname,
      protocol: 'tcp',
      dstAddress: conn.dst.address,
      dstPort: conn.dst.port,
      srcAddress: conn.src.address,
      srcPort: conn.src.port,
    };
    // one reading of the settings for the whole connection: a reload meanwhile is for the next one
    const { policy, sniffTimeoutMs, httpInspect, sniffOnlyToLog } = this.live;
    const need = policy.ownerNeed(input);
    if (need > 0) {
      const a = await this.ownerOf(conn, need === 2 ? 2 : 1);
      input.owner = a.owner;
      Object.assign(line, ownerFields(a));
    }

    if (policy.needsSniff(input)) {
      const client = conn.accept();
      const sniffed = await sniffStream(client, sniffTimeoutMs);
      if (this.misdirected(conn, fakeName, sniffed, line, client, finish)) return;
      const d = policy.decide({ ...input, hostname: conn.hostname ?? sniffed.host, protocol: sniffed.protocol });
      noteDecision(line, d, sniffed);
      if (d.action === 'reject') return this.refuse(client, sniffed, d, finish);
      if (this.cannotApply(d, sniffed, client, finish)) return;
      const opened = await this.openOrAnswer(conn, d, sniffed, finish, (err) => {
        if (sniffed.protocol === 'http') respondAndClose(client, 502, `Bad gateway: ${err.message}\n`);
        else resetClient(client);
      });
      if (opened) this.serve(conn, client, opened, sniffed, input, d, fakeName, finish, httpInspect);
      return;
    }

    const d = policy.decide(input);
    noteDecision(line, d);
    if (d.action === 'reject') {
      // explicit proxies refuse in their own terms (403, SOCKS5 "not allowed");
      // a TUN client is only told why when it speaks HTTP
      if (!httpInspect || conn.inbound !== 'tun') {
        this.counters.rejected++;
        conn.reject('forbidden');
        return finish('rejected');
      }
      // accepted only to tell HTTP clients why, with a 403
      const client = conn.accept();
      const sniffed = await sniffStream(client, sniffTimeoutMs);
      noteDecision(line, d, sniffed);
      return this.refuse(client, sniffed, d, finish);
    }
    const opened = await this.openOrAnswer(conn, d, undefined, finish, (err, kind) => {
      // a server that accepted and reset at once (before the connect was seen) fails the
      // dial with ECONNRESET: the client gets what it would directly, a connection then a RST
      if ((err as DialError).code === 'ECONNRESET') resetClient(conn.accept());
      else conn.reject(kind === 'refused' ? 'rst' : 'unreachable', err instanceof DialError && err.code === 'ENETUNREACH');
    });
    if (!opened) return;
    let client: Duplex;
    try {
      client = conn.accept();
    } catch (e) {
      // the client reset while we dialled (a kernel socket in redirect/tproxy): so is the server
      opened.socket.resetAndDestroy();
      this.counters.failed++;
      return finish('client-gone', (e as Error).message);
    }
    let sniffed: Sniffed = { protocol: 'tcp', by: 'verdict' };
    if (httpInspect || fakeName !== undefined) {
      // the server may speak first (SSH, SMTP): then the stream is opaque at once;
      // only the log wants to know (no rule reads names or headers, no fake IP to check): the first bytes read decide
      sniffed = await sniffStream(client, sniffTimeoutMs, opened.socket, sniffOnlyToLog && fakeName === undefined);
      noteDecision(line, d, sniffed);
      if (this.misdirected(conn, fakeName, sniffed, line, client, finish, opened.socket)) return;
      if (this.cannotApply(d, sniffed, client, finish, opened.socket)) return;
    }
    this.serve(conn, client, opened, sniffed, input, d, fakeName, finish, httpInspect);
  }

  /** Who made the connection: asked of the kernel for connections from this host (TUN, redirect, tproxy), never for explicit-proxy clients. */
  private async ownerOf(conn: InboundConnection, need: 1 | 2): Promise<OwnerAnswer> {
    if (conn.inbound === 'http-proxy' || conn.inbound === 'socks5') return { owner: null, why: EXPLICIT_NO_OWNER };
    if (!this.opts.owners) return { owner: null, why: 'owner lookups are off here' };
    try {
      return await this.opts.owners.lookup('tcp', conn.src, conn.dst, need);
    } catch (e) {
      return { owner: null, why: `lookup failed: ${(e as Error).message}` };
    }
  }

  /**
   * A fake IP stands for one name: a TLS hello for another is reset here, an
   * HTTP request for another is answered 421 by the request policy.
   */
  private misdirected(
    conn: InboundConnection,
    fakeName: string | undefined,
    s: Sniffed,
    line: Record<string, unknown>,
    client: Duplex,
    finish: Finish,
    upstream?: net.Socket,
  ): boolean {
    if (fakeName === undefined || s.protocol !== 'tls' || s.host === undefined || s.host === fakeName) return false;
    this.counters.fakeIpMismatch++;
    line.sni = s.host;
    this.opts.log.warn({ id: conn.id, dst: endpointText(conn.dst), mapped: fakeName, sni: s.host }, 'fake IP names another host: reset');
    upstream?.destroy();
    resetClient(client);
    finish('fake-ip-mismatch');
    return true;
  }

  /** A header rule on a stream that is not readable HTTP (unknown, h2c): reset rather than pass it unedited. */
  private cannotApply(d: Decision, s: Sniffed, client: Duplex, finish: Finish, upstream?: net.Socket): boolean {
    const headerRule = d.action === 'set-header' || d.action === 'remove-header';
    if (!headerRule || s.protocol === 'http' || s.protocol === 'tls' || (s.protocol === 'tcp' && !s.h2c)) return false;
    this.counters.rejected++;
    upstream?.destroy();
    resetClient(client);
    finish('header-rule-not-applicable');
    return true;
  }

  /**
   * Relays until both sides have closed, then logs the connection; a failure is the
   * connection's end (internal-error), as in handle(). Neither async nor returned to run():
   * an await, or run() returning this promise, would keep frames and a promise chain (about
   * 1 KB) alive for the connection's life; the plain relay's continuation holds only finish.
   */
  private serve(
    conn: InboundConnection,
    client: Duplex,
    opened: Opened,
    sniffed: Sniffed,
    input: MatchInput,
    d: Decision,
    fakeName: string | undefined,
    finish: Finish,
    httpInspect: boolean,
  ): void {
    const served =
      sniffed.protocol === 'http' && (httpInspect || fakeName !== undefined)
        ? this.serveHttp(conn, client, opened, input, d, fakeName, finish)
        : relay(client, opened.socket).then((r) => finish(r.end, r.error));
    served.catch((e: Error) => {
      this.counters.failed++;
      finish('internal-error', e.message);
    });
  }

  private async serveHttp(conn: InboundConnection, client: Duplex, opened: Opened, input: MatchInput, d: Decision, fakeName: string | undefined, finish: Finish): Promise<void> {
    const live = () => this.live.policy;
    const ctx: RequestContext = {
      // each request is decided by the rules in force when it arrives (a reload applies to the next request)
      get policy() {
        return live();
      },
      destinations: this.destinations,
      input,
      decision: d,
      ...(fakeName !== undefined ? { fakeName } : {}),
      ...(conn.hostname !== undefined && fakeName === undefined ? { hostname: conn.hostname } : {}),
      dialled: opened.dialled,
      onRefused: (why, info, rule) => this.refusedRequest(conn, why, info, rule),
    };
    const r = await relayHttp(client, opened.socket, { decide: requestDecider(ctx), onExchange: (e) => this.logRequest(conn, e), quiet: this.quietRequests });
    if (r.end === 'rejected') this.counters.rejected++;
    return finish(r.end, r.error);
  }

  private refusedRequest(conn: InboundConnection, why: 'secret-withheld' | 'fake-ip-mismatch' | 'route-mismatch', info: HttpRequestInfo, rule: string): void {
    if (why === 'secret-withheld') this.counters.secretWithheld++;
    if (why === 'fake-ip-mismatch') this.counters.fakeIpMismatch++;
    const msg = {
      'secret-withheld': 'secret withheld: the destination is not an address of the name',
      'fake-ip-mismatch': 'fake IP names another host: 421',
      'route-mismatch': 'request goes another way than its connection: 421',
    }[why];
    this.opts.log.warn({ id: conn.id, dst: endpointText(conn.dst), mapped: conn.hostname, host: info.host, rule }, msg);
  }

  private refuse(client: Duplex, sniffed: Sniffed, d: Decision, finish: Finish): void {
    this.counters.rejected++;
    if (sniffed.protocol === 'http') respondAndClose(client, 403, forbidden(d.rule));
    else resetClient(client);
    finish('rejected');
  }

  private logRequest(conn: Pick<InboundConnection, 'id' | 'src' | 'dst'>, e: HttpExchange, extra?: Record<string, unknown>): void {
    this.counters.httpRequests++;
    if (this.opts.log.isLevelEnabled('info')) this.opts.log.info({ id: conn.id, src: endpointText(conn.src), dst: endpointText(conn.dst), ...e, ...extra }, 'http');
  }

  /** An explicit-proxy request with an absolute URI (explicit-forward.ts). */
  forwardProxyRequest(req: http.IncomingMessage, res: http.ServerResponse, target: ProxyTarget): void {
    forwardExplicit(
      {
        policy: this.policy,
        refused: () => this.counters.rejected++,
        open: (conn, d, tlsName) => this.open(conn, d, tlsName),
        log: (conn, e, extra) => this.logRequest(conn, e, extra),
      },
      this.proxyRequestId++,
      req,
      res,
      target,
    );
  }

  /** open(), or on failure: count it, let `answer` tell the client, log the end, and give null. */
  private async openOrAnswer(
    conn: TrackedConnection,
    d: Decision,
    sniffed: Sniffed | undefined,
    finish: Finish,
    answer: (err: Error, kind: DialError['kind'] | 'unresolved') => void,
  ): Promise<Opened | null> {
    try {
      // TLS origination only for a stream the program speaks plain HTTP on
      const tlsName = d.upstreamTls && sniffed?.protocol === 'http' ? (conn.hostname ?? sniffed.host) : undefined;
      const opened = await this.open(conn, d, tlsName);
      // until the relay listens, a reset from the server (one that aborts at
      // once) must not be an unhandled 'error' that ends the data plane; the
      // relay finds it in upstream.errored
      opened.socket.on('error', () => {});
      conn.attach(opened.socket);
      return opened;
    } catch (e) {
      const err = e as Error;
      const kind = err instanceof DialError ? err.kind : 'unresolved';
      this.counters.failed++;
      answer(err, kind);
      finish(`upstream-${kind}`, err.message);
      return null;
    }
  }

  /** openUpstream, once more if the source address it bound has just gone (upstream-open.ts). */
  private open(conn: Pick<InboundConnection, 'dst' | 'hostname'>, d: Decision, tlsName?: string): Promise<Opened> {
    const dial = this.opts.openUpstream ?? openUpstream;
    return openOnceMore(
      (o) => dial(conn, d, tlsName, o),
      () => this.dialOptions(),
    );
  }

  /** The options a dial reads: the uplink's addresses now, the connect timeout in force. */
  private dialOptions(): OpenOptions {
    const o = this.opts;
    return { localAddress: o.localAddress, localAddress6: o.localAddress6, connectTimeoutMs: this.live.connectTimeoutMs, lookup: o.lookup, isFakeAddress: o.isFakeAddress };
  }
}
