// A minimal, bounded scan of an HTTP/1.x request head, only to tell whether
// a stream is HTTP and which host it is for. The real parsing is Node's
// llhttp (see ../http/http-relay.ts). Pure, looks at no more than 16 KiB,
// never throws and never reads past buf.length.
//
// Verdicts are stable: once a prefix gets 'http' or 'not-http', any longer
// prefix gets the same answer.
import { isIPv6 } from 'node:net';

export type HttpSniff =
  | { kind: 'http'; method: string; path: string; host?: string; version: '1.0' | '1.1' }
  | { kind: 'need-more' }
  | { kind: 'not-http' };

/** Node's default --max-http-header-size: a longer head would be refused anyway. */
const MAX_HEAD = 16 * 1024;
const MAX_METHOD = 20;
const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const VERSION_PREFIX = 'HTTP/1.';

const isUpper = (c: number) => c >= 0x41 && c <= 0x5a;

export function sniffHttpHead(buf: Buffer): HttpSniff {
  const head = buf.length > MAX_HEAD ? buf.subarray(0, MAX_HEAD) : buf;
  const n = head.length;
  // at the bound no later byte will be looked at, so "incomplete" is final
  const capped = n >= MAX_HEAD;
  // A request line that does not fit is refused by Node's parser too, and
  // without its version and target there is nothing to report.
  const shortLine = (): HttpSniff => (capped ? { kind: 'not-http' } : { kind: 'need-more' });

  // Method: uppercase letters only, so binary, TLS (0x16) and banners such as
  // "SSH-2.0-" fail on the first byte that cannot belong to one.
  let i = 0;
  while (i < n && isUpper(head[i])) {
    if (++i > MAX_METHOD) return { kind: 'not-http' };
  }
  if (i === n) return { kind: 'need-more' };
  if (i < 3 || head[i] !== SP) return { kind: 'not-http' };
  const method = head.toString('latin1', 0, i);

  // Target: visible ASCII; bytes >= 0x80 are tolerated as raw UTF-8.
  const targetStart = ++i;
  while (i < n && head[i] > SP && head[i] !== 0x7f) i++;
  if (i === n) return shortLine();
  if (i === targetStart || head[i] !== SP) return { kind: 'not-http' };
  const target = head.toString('utf8', targetStart, i);
  i++;

  // "HTTP/1.0" or "HTTP/1.1", then CRLF; HTTP/0.9 and the HTTP/2 preface fail here.
  for (let k = 0; k < VERSION_PREFIX.length; k++, i++) {
    if (i === n) return shortLine();
    if (head[i] !== VERSION_PREFIX.charCodeAt(k)) return { kind: 'not-http' };
  }
  if (i === n) return shortLine();
  const minor = head[i++];
  if (minor !== 0x30 && minor !== 0x31) return { kind: 'not-http' };
  const version = minor === 0x30 ? '1.0' : '1.1';
  if (i === n) return shortLine();
  if (head[i++] !== CR) return { kind: 'not-http' };
  if (i === n) return shortLine();
  if (head[i++] !== LF) return { kind: 'not-http' };

  const { path, authority } = splitTarget(method, target);
  const http = (headerHost: string | undefined): HttpSniff => {
    const host = headerHost ?? (authority === undefined ? undefined : hostOf(authority));
    const out: HttpSniff = { kind: 'http', method, path, version };
    if (host !== undefined) out.host = host;
    return out;
  };

  // Header lines until the blank line. The request line made this HTTP, so
  // odd header lines are skipped rather than judged.
  while (true) {
    const eol = head.indexOf('\r\n', i, 'latin1');
    if (eol < 0) return capped ? http(undefined) : { kind: 'need-more' };
    if (eol === i) return http(undefined);
    if (isHostLine(head, i, eol)) {
      // the first Host header decides; nothing later in the head can change that
      return http(hostOf(trimOws(head.toString('latin1', i + 5, eol))));
    }
    i = eol + 2;
  }
}

/** "Host:" with any case and no space before the colon (RFC 9112 §5.1). */
function isHostLine(b: Buffer, s: number, e: number): boolean {
  return (
    e - s >= 5 &&
    (b[s] | 0x20) === 0x68 &&
    (b[s + 1] | 0x20) === 0x6f &&
    (b[s + 2] | 0x20) === 0x73 &&
    (b[s + 3] | 0x20) === 0x74 &&
    b[s + 4] === 0x3a
  );
}

function trimOws(s: string): string {
  return s.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** The path to report and, for absolute-form and CONNECT targets, the authority in them. */
function splitTarget(method: string, target: string): { path: string; authority?: string } {
  // authority-form (RFC 9112 §3.2.3) names the host itself
  if (method === 'CONNECT') return { path: target, authority: target };
  const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)(.*)$/.exec(target);
  if (m === null) return { path: target };
  const rest = m[2];
  const at = m[1].lastIndexOf('@');
  return { path: rest === '' || rest[0] !== '/' ? `/${rest}` : rest, authority: m[1].slice(at + 1) };
}

const REG_NAME = /^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$/;

/** "name", "name:port", "[v6]" or "[v6]:port" to a lower-case host, or undefined. */
function hostOf(value: string): string | undefined {
  let host: string;
  let rest: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0) return undefined;
    host = value.slice(1, close).toLowerCase();
    rest = value.slice(close + 1);
    if (!isIPv6(host)) return undefined;
  } else {
    const colon = value.indexOf(':');
    host = (colon < 0 ? value : value.slice(0, colon)).toLowerCase();
    rest = colon < 0 ? '' : value.slice(colon);
    // "example.com." names the same host as "example.com"
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (host.length > 253 || !REG_NAME.test(host)) return undefined;
  }
  // the port may be empty (RFC 3986 §3.2.3)
  if (rest !== '' && !/^:[0-9]{0,5}$/.test(rest)) return undefined;
  return host;
}
