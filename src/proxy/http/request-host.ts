// Which host an HTTP/1.x request is for, read the way a server reads it
// (RFC 9112 §3.2), shared by the sniffer and the relay so both see the same
// name:
//  - absolute-form ("GET http://a.example/ ..."): the URI's authority, whatever
//    the scheme and its case; the Host header is then replaced by it (§3.2.2);
//  - authority-form (CONNECT): the target itself (§3.2.3);
//  - otherwise the one Host header.
// What a server could read another way is refused, as nginx refuses it: a
// second Host (§3.2: 400), no Host in HTTP/1.1, a Host or authority that is not
// exactly uri-host[:port] (userinfo, two ports, "%2e", spaces, "a..b").
import { isIPv4, isIPv6 } from 'node:net';

export interface Authority {
  /** Lower case, one trailing dot removed; an IPv6 address without brackets. */
  host: string;
  /** What to write in a Host header: the host (IPv6 in brackets) and the port when one was given. */
  text: string;
}

export type RequestHost =
  | {
      ok: true;
      host?: string;
      /** Set when the Host header must be rewritten to this (absolute-form). */
      replaceHost?: string;
      /** The path for logs: the target without scheme and authority. */
      path: string;
    }
  | { ok: false; reason: string };

const LABEL = /^[a-z0-9_-]{1,63}$/;
const SCHEME_AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)(.*)$/is;

/** "name", "name:port", "[v6]" or "[v6]:port" (RFC 3986 §3.2.2, §3.2.3), or null. */
export function parseAuthority(value: string): Authority | null {
  let host: string;
  let rest: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) return null;
    host = value.slice(1, close).toLowerCase();
    if (!isIPv6(host)) return null;
    rest = value.slice(close + 1);
  } else {
    const colon = value.indexOf(':');
    host = (colon < 0 ? value : value.slice(0, colon)).toLowerCase();
    rest = colon < 0 ? '' : value.slice(colon);
    // "example.com." names the same host as "example.com" (servers strip one dot too)
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (host.length === 0 || host.length > 253) return null;
    if (!isIPv4(host) && !host.split('.').every((l) => LABEL.test(l))) return null;
  }
  // the port may be empty (RFC 3986 §3.2.3); one port only
  if (rest !== '' && !/^:[0-9]{0,5}$/.test(rest)) return null;
  const port = rest.length > 1 ? Number(rest.slice(1)) : undefined;
  if (port !== undefined && port > 65535) return null;
  const shown = isIPv6(host) ? `[${host}]` : host;
  return { host, text: port === undefined ? shown : `${shown}:${port}` };
}

/**
 * The host of one request from its method, target, Host header values (every
 * one, in order) and version. `http11`: HTTP/1.1 or later, where Host is required.
 */
export function requestHost(method: string, target: string, hostValues: readonly string[], http11: boolean): RequestHost {
  if (hostValues.length > 1) return { ok: false, reason: 'more than one Host header' };
  const header = hostValues.length === 1 ? hostValues[0].replace(/^[ \t]+|[ \t]+$/g, '') : undefined;
  if (header === undefined && http11) return { ok: false, reason: 'HTTP/1.1 request without Host' };
  const fromHeader = header === undefined ? undefined : parseAuthority(header);
  if (header !== undefined && fromHeader === null) return { ok: false, reason: 'Host is not a host[:port]' };

  if (method === 'CONNECT') {
    const a = parseAuthority(target);
    if (a === null) return { ok: false, reason: 'CONNECT target is not host:port' };
    return { ok: true, host: a.host, path: target };
  }
  const m = SCHEME_AUTHORITY.exec(target);
  if (m !== null) {
    if (m[1].includes('@')) return { ok: false, reason: 'userinfo in the request target' };
    const a = parseAuthority(m[1]);
    if (a === null) return { ok: false, reason: 'the request target has no valid authority' };
    const path = m[2] === '' || m[2][0] !== '/' ? `/${m[2]}` : m[2];
    return { ok: true, host: a.host, replaceHost: a.text, path };
  }
  return { ok: true, ...(fromHeader ? { host: fromHeader.host } : {}), path: target };
}
