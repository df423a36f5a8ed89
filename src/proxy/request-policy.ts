// The verdict on each HTTP request of one connection. The connection was
// decided (and dialled) on its first bytes; every request is decided again on
// its own Host, and held to what the connection is:
//  - a fake IP stands for one name: a request for another is answered 421 (the
//    client holds an old DNS answer, or tries one name through another's address);
//  - a request whose rule would send it another way (another upstream, TLS
//    origination or not) is answered 421: the client retries on a new connection;
//  - a reject rule answers 403;
//  - a secret header (set-header) is added only when the connection really goes
//    to that name: dialled by the name itself, to an address the gateway
//    resolved for it, or over TLS whose certificate is valid for it. Otherwise
//    the request is refused with a 403 that says why (and a log line), never
//    passed without the header: the program learns at once that it is misdirected.
import type tls from 'node:tls';
import type { HttpRequestInfo, RequestVerdict } from './http/http-forward.js';
import { forbidden } from './http/http-forward.js';
import { routeOf, type Decision, type Policy } from './policy.js';
import type { MatchInput } from './rules/rule-types.js';
import type { DestinationCheck } from './destination-check.js';
import { certificateCovers } from './upstream-tls.js';

/** Where a connection's upstream really goes. */
export interface Dialled {
  /** Dialled by this name (resolved by the gateway, or by the upstream proxy it trusts). */
  name?: string;
  /** The address the upstream socket reached (absent through an upstream proxy that was given a name). */
  address?: string;
  /** TLS the gateway originated, its certificate checked. */
  tls?: tls.TLSSocket;
}

export interface RequestContext {
  policy: Policy;
  destinations: DestinationCheck;
  /** The connection's match input (addresses, ports); hostname and protocol are set per request. */
  input: MatchInput;
  /** The connection's decision: requests must go the same way. */
  decision: Decision;
  /** The name behind a fake IP: every request must be for it. */
  fakeName?: string;
  /** A name given before any byte (explicit proxy, SOCKS5): for requests without Host. */
  hostname?: string;
  dialled: Dialled;
  /** Told once per refused request whose secret was withheld, or which was for another name. */
  onRefused: (why: 'secret-withheld' | 'fake-ip-mismatch' | 'route-mismatch', info: HttpRequestInfo, rule: string) => void;
}

export function requestDecider(c: RequestContext): (info: HttpRequestInfo) => RequestVerdict | Promise<RequestVerdict> {
  const route = routeOf(c.decision);
  return (info) => {
    if (c.fakeName !== undefined && info.host !== undefined && info.host !== c.fakeName && info.host !== c.input.dstAddress) {
      c.onRefused('fake-ip-mismatch', info, 'fake-ip');
      return refuse('fake-ip', 421, `This address is ${c.fakeName}'s, not ${info.host}'s: resolve the name again.\n`);
    }
    const name = c.fakeName ?? info.host ?? c.hostname;
    const d = c.policy.decide({ ...c.input, protocol: 'http', hostname: name });
    if (d.action === 'reject') return refuse(d.rule, 403, forbidden(d.rule), d.action);
    if (routeOf(d) !== route) {
      c.onRefused('route-mismatch', info, d.rule);
      return refuse(d.rule, 421, `This connection goes another way than rule "${d.rule}" sends ${name ?? 'this request'}: retry on a new connection.\n`, d.action);
    }
    const verdict: RequestVerdict = { rule: d.rule, action: d.action, edits: d.edits };
    if (!d.secret || !d.named) return verdict;
    const withheld = (): RequestVerdict => {
      c.onRefused('secret-withheld', info, d.rule);
      const where = c.dialled.address ?? c.dialled.name ?? 'this destination';
      return refuse(d.rule, 403, `Rule "${d.rule}" adds a credential for ${name} only where ${name} really is; ${where} is not one of its addresses.\n`, d.action);
    };
    const ok = trusted(c, name!);
    if (ok === true) return verdict;
    if (ok === false) return withheld();
    return ok.then((yes) => (yes ? verdict : withheld()));
  };
}

function trusted(c: RequestContext, name: string): boolean | Promise<boolean> {
  if (c.dialled.tls) return certificateCovers(c.dialled.tls, name);
  if (c.dialled.name === name) return true;
  if (c.dialled.address === undefined) return false;
  return c.destinations.verify(name, c.dialled.address);
}

function refuse(rule: string, status: 403 | 421, body: string, action = 'refused'): RequestVerdict {
  return { rule, action, edits: [], refuse: { status, body } };
}
