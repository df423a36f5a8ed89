// A bounded scan of an HTTP/1.x request head, only to tell whether a stream
// is HTTP and which host its first request is for. The real parsing is
// llhttp's (../http/http-relay.ts), which refuses with a 400 what it cannot
// read; so this scan is liberal: everything a common server could take as an
// HTTP/1.x request line is 'http' here, and the relay then reads it or refuses
// it, never passes it unseen. Accepted as servers accept them (nginx was the
// reference): bare LF line ends, leading empty lines (RFC 9112 §2.2), any
// token as method in any case, several spaces between the parts, any letter
// case in names. Pure, looks at no more than 16 KiB, never throws.
//
// Verdicts are stable: once a prefix gets 'http' or 'not-http', any longer
// prefix gets the same answer.
import { requestHost } from '../http/request-host.js';

export type HttpSniff = { kind: 'http'; method: string; path: string; host?: string; version: string } | { kind: 'need-more' } | { kind: 'not-http' };

/** Node's default --max-http-header-size: a longer head is refused by the relay anyway. */
const MAX_HEAD = 16 * 1024;
const MAX_METHOD = 20;
const SP = 0x20;
const HTAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;

/** tchar (RFC 9110 §5.6.2). */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = TCHAR[c + 0x20] = 1;

const isBlank = (c: number) => c === SP || c === HTAB;
const isEol = (c: number) => c === CR || c === LF;

/**
 * `final`: no more bytes will come (the sniff budget ran out, or the client
 * closed). An HTTP request line is then 'http' even without its headers.
 */
export function sniffHttpHead(buf: Buffer, final = false): HttpSniff {
  const head = buf.length > MAX_HEAD ? buf.subarray(0, MAX_HEAD) : buf;
  const n = head.length;
  const capped = n >= MAX_HEAD;
  const more = (): HttpSniff => ({ kind: 'need-more' });

  // leading empty lines are ignored by servers (RFC 9112 §2.2)
  let i = 0;
  while (i < n && isEol(head[i])) i++;
  if (i === n) return capped ? { kind: 'not-http' } : more();

  // method: a token, any case (nginx refuses lower case with a 400, Go takes it)
  const methodStart = i;
  while (i < n && TCHAR[head[i]]) {
    if (++i - methodStart > MAX_METHOD) return { kind: 'not-http' };
  }
  if (i === n) return more();
  if (i === methodStart || !isBlank(head[i])) return { kind: 'not-http' };
  const method = head.toString('latin1', methodStart, i);
  while (i < n && isBlank(head[i])) i++;
  if (i === n) return more();

  // target: anything up to the next blank or line end; llhttp judges its bytes
  const targetStart = i;
  while (i < n && !isBlank(head[i]) && !isEol(head[i])) i++;
  if (i === n) return more();
  if (i === targetStart || isEol(head[i])) return { kind: 'not-http' }; // HTTP/0.9 or a two-word line: not HTTP/1.x
  const target = head.toString('latin1', targetStart, i);
  while (i < n && isBlank(head[i])) i++;

  // "HTTP/" in any case: a request line (a wrong case or version gets a 400 from the relay)
  const versionStart = i;
  for (let k = 0; k < 5; k++, i++) {
    if (i === n) return more();
    if ((head[i] | (k < 4 ? 0x20 : 0)) !== 'http/'.charCodeAt(k)) return { kind: 'not-http' };
  }
  while (i < n && !isEol(head[i])) i++;
  if (i === n) return more();
  const version = head.toString('latin1', versionStart + 5, i).replace(/[ \t]+$/, '');
  // the HTTP/2 connection preface (RFC 9113 §3.4) is not HTTP/1.x
  if (method === 'PRI' && target === '*' && version === '2.0') return { kind: 'not-http' };
  // a CR may still be followed by its LF
  if (head[i] === CR && i + 1 === n && !final && !capped) return more();
  i = lineEnd(head, i);

  // an incomplete head (the budget is spent) is judged on what came: a missing Host may still have come
  const http = (hosts: string[], complete: boolean): HttpSniff => {
    const r = requestHost(method, target, hosts, complete && version !== '1.0' && version !== '0.9');
    const out: HttpSniff = { kind: 'http', method, path: r.ok ? r.path : target, version };
    if (r.ok && r.host !== undefined) out.host = r.host;
    return out;
  };

  // header lines until the empty line: every Host value, to judge them as the relay will
  const hosts: string[] = [];
  while (true) {
    let eol = i;
    while (eol < n && head[eol] !== LF) eol++;
    if (eol === n) return final || capped ? http(hosts, false) : more();
    const end = eol > i && head[eol - 1] === CR ? eol - 1 : eol;
    if (end === i) return http(hosts, true);
    if (end - i >= 5 && head.toString('latin1', i, i + 5).toLowerCase() === 'host:') hosts.push(head.toString('latin1', i + 5, end));
    i = eol + 1;
  }
}

/** Index after the line end at i (CRLF, LF, or a bare CR as llhttp reads it). */
function lineEnd(b: Buffer, i: number): number {
  if (b[i] === CR && i + 1 < b.length && b[i + 1] === LF) return i + 2;
  return i + 1;
}
