// Explicit-proxy requests with an absolute URI (a client configured with this
// gateway as its HTTP proxy): each decided by the rules on its own and forwarded
// over a kept-alive upstream connection per target of the client's connection.
import http from 'node:http';
import { isIP } from 'node:net';
import type net from 'node:net';
import type { Endpoint } from '../net/endpoint.js';
import type { Policy, Decision } from './policy.js';
import type { Opened } from './upstream-open.js';
import type { InboundConnection } from './inbound.js';
import type { MatchInput } from './rules/rule-types.js';
import type { HeaderEdit } from './http/header-edits.js';
import { forbidden, forwardRequest, type HttpExchange } from './http/http-forward.js';
import { ownerFields } from './owner-lookup.js';

/** Said in the line of an explicit-proxy connection or request when a rule asks for the owner. */
export const EXPLICIT_NO_OWNER = 'an explicit-proxy client: its owner is not looked up';

/** Where an explicit-proxy request goes: the URI's host, port, path and authority, and the client's address. */
export interface ProxyTarget {
  src: Endpoint;
  host: string;
  port: number;
  path: string;
  authority: string;
}

/** What the forward needs of the core: the rules in force, its counter, its dial, its log. */
export interface ForwardCore {
  policy: Policy;
  refused(): void;
  open(conn: Pick<InboundConnection, 'dst' | 'hostname'>, d: Decision, tlsName?: string): Promise<Opened>;
  log(conn: Pick<InboundConnection, 'id' | 'src' | 'dst'>, e: HttpExchange, extra?: Record<string, unknown>): void;
}

/** Meant for the proxy itself, not the server. */
const PROXY_HEADERS: HeaderEdit[] = [
  { op: 'remove', name: 'proxy-connection' },
  { op: 'remove', name: 'proxy-authorization' },
];

/** An explicit-proxy client connection's kept-alive upstream agents, by target. */
const proxyAgents = new WeakMap<object, Map<string, http.Agent>>();

/**
 * An explicit-proxy request with an absolute URI: decided by the rules on its
 * own, and forwarded over a kept-alive upstream connection per target of
 * the client's proxy connection. The Host header is the URI's authority
 * (RFC 9112 §3.2.2), so the server answers for the name the rules saw.
 */
export function forwardExplicit(core: ForwardCore, id: number, req: http.IncomingMessage, res: http.ServerResponse, target: ProxyTarget): void {
  const dst: Endpoint = { family: isIP(target.host) === 6 ? 6 : 4, address: target.host, port: target.port };
  const conn = { id, src: target.src, dst, hostname: isIP(target.host) ? undefined : target.host };
  const input: MatchInput = { hostname: conn.hostname, protocol: 'http', dstAddress: target.host, dstPort: target.port, srcAddress: target.src.address };
  // an explicit-proxy client's socket is not looked up: rules on its owner do not match, and the line says so
  const policy = core.policy;
  const noOwner = policy.ownerNeed(input) > 0 ? ownerFields({ owner: null, why: EXPLICIT_NO_OWNER }) : undefined;
  const d = policy.decide(input);
  const edits: HeaderEdit[] = [...PROXY_HEADERS, { op: 'set', name: 'Host', value: target.authority }, ...d.edits];
  const verdict =
    d.action === 'reject' ? { rule: d.rule, action: d.action, edits: [], refuse: { status: 403 as const, body: forbidden(d.rule) } } : { rule: d.rule, action: d.action, edits };
  if (verdict.refuse) core.refused();
  let agents = proxyAgents.get(req.socket);
  if (!agents) {
    const m = (agents = new Map());
    proxyAgents.set(req.socket, m);
    req.socket.once('close', () => {
      for (const a of m.values()) a.destroy();
    });
  }
  const key = `${d.upstream?.name ?? ''}|${d.upstreamTls ? 'tls' : ''}|${target.host}|${target.port}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    (agent as unknown as { createConnection: unknown }).createConnection = (_o: unknown, cb: (err: Error | null, s?: net.Socket) => void) => {
      core.open(conn, d, conn.hostname).then(
        (o) => cb(null, o.socket),
        (e: Error) => cb(e),
      );
      return undefined;
    };
    agents.set(key, agent);
  }
  forwardRequest(req, res, agent, verdict, (e) => core.log({ id, src: target.src, dst }, { ...e, host: e.host ?? target.host }, noOwner), target.path);
}
