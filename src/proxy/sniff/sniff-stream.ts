// Looks at the first bytes a client sends to learn what the stream is (HTTP
// request head, TLS ClientHello, or opaque TCP), then puts them back so the
// upstream receives them unchanged. A short timeout keeps server-speaks-first
// protocols (SSH, SMTP) from waiting on a client that says nothing.
//
// What cannot be told within the budget (time, bytes, or the client's FIN)
// is 'unknown', never opaque TCP: a client that sends its request line slowly,
// or a ClientHello that does not fit, must not walk past a name rule. Rules
// can match 'unknown' (and 'tcp') to fail closed.
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { sniffHttpHead } from './http-head.js';
import { sniffTlsClientHello } from './tls-client-hello.js';

export interface Sniffed {
  /** tcp: read, and neither HTTP/1.x nor TLS; unknown: could not be told, or a TLS hello whose name cannot be read. */
  protocol: 'http' | 'tls' | 'tcp' | 'unknown';
  /** Host header or SNI, lower case. */
  host?: string;
  alpn?: string[];
  method?: string;
  path?: string;
  /** The HTTP/2 connection preface (h2c with prior knowledge): opaque, nothing in it is read. */
  h2c?: true;
  /** The ClientHello offers Encrypted Client Hello: the SNI is the outer, public name. */
  ech?: true;
  /** Why a TLS hello is unknown. */
  unreadable?: string;
  /** Why sniffing stopped: a verdict, the timeout, the client's FIN, the bound, the server speaking first, or the first bytes read (firstRead). */
  by: 'verdict' | 'timeout' | 'end' | 'limit' | 'aborted' | 'first-read';
}

/** The most we hold back from the upstream while deciding. */
// a 16 KiB ClientHello plus its record headers still fits
const SNIFF_LIMIT = 17 * 1024;

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * The verdict on the first bytes, or null while more could change it.
 * `final`: no more bytes will come; what is still undecided is then unknown.
 */
export function classify(buf: Buffer, final = false): Sniffed | null {
  if (buf.length === 0) return final ? { protocol: 'unknown', by: 'verdict' } : null;
  const tls = sniffTlsClientHello(buf);
  if (tls.kind === 'tls') {
    const out: Sniffed = { protocol: 'tls', host: tls.sni, alpn: tls.alpn, by: 'verdict' };
    if (tls.ech) out.ech = true;
    return out;
  }
  if (tls.kind === 'unreadable') return { protocol: 'unknown', unreadable: tls.reason, by: 'verdict' };
  const http = sniffHttpHead(buf, final);
  if (http.kind === 'http') return { protocol: 'http', host: http.host, method: http.method, path: http.path, by: 'verdict' };
  if (tls.kind === 'not-tls' && http.kind === 'not-http') {
    const prefix = buf.length >= H2_PREFACE.length ? buf.subarray(0, H2_PREFACE.length) : null;
    return prefix && prefix.equals(H2_PREFACE) ? { protocol: 'tcp', h2c: true, by: 'verdict' } : { protocol: 'tcp', by: 'verdict' };
  }
  return final ? { protocol: 'unknown', by: 'verdict' } : null;
}

/**
 * Resolves once the stream's kind is known. The bytes read stay in the
 * stream (unshifted), so whoever reads it next sees them first.
 * `serverFirst`: the upstream, whose first 'readable' (the server speaks
 * first) ends the wait early; listened to directly, not through an
 * AbortController, which cost an EventTarget and a signal per connection.
 * `firstRead`: decide on the first bytes read, undecided then being unknown,
 * for a sniff nothing but the log depends on: a client whose first message
 * is short and could still begin an HTTP request line ("x") would otherwise
 * wait out the whole timeout before its first byte reaches the server.
 */
export function sniffStream(client: Duplex, timeoutMs: number, serverFirst?: EventEmitter, firstRead = false): Promise<Sniffed> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let settled = false;
    const finish = (result: Sniffed) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off('readable', onReadable);
      client.off('error', onError);
      serverFirst?.off('readable', onAbort);
      // unshift is allowed until 'end' is emitted, which only happens once the buffer is read empty
      if (length > 0 && !client.destroyed) client.unshift(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length));
      resolve(result);
    };
    // the budget is spent: decide on what came, undecided means unknown
    const verdictOr = (by: Sniffed['by']): Sniffed => {
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
      return { ...classify(all, true)!, by };
    };
    const onReadable = () => {
      // read(n) of exactly what is buffered never triggers 'end' (read() would),
      // so the bytes can still go back in front of the FIN
      if (client.readableLength === 0) return sawEof() ? finish(verdictOr('end')) : undefined;
      const chunk = client.read(client.readableLength) as Buffer | null;
      if (chunk === null) return;
      chunks.push(chunk);
      length += chunk.length;
      const all = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
      if (chunks.length > 1) {
        chunks.length = 0;
        chunks.push(all);
      }
      const verdict = classify(all);
      if (verdict) return finish(verdict);
      if (length >= SNIFF_LIMIT) return finish(verdictOr('limit'));
      if (sawEof()) return finish(verdictOr('end'));
      if (firstRead) finish(verdictOr('first-read'));
    };
    // Node has no public "EOF seen, 'end' not yet emitted" flag
    const sawEof = () => (client as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true;
    const onError = () => finish({ protocol: 'unknown', by: 'end' });
    // the server spoke first: HTTP and TLS servers never do, so a silent client is plain TCP
    const onAbort = () => finish(length === 0 ? { protocol: 'tcp', by: 'aborted' } : verdictOr('aborted'));
    const timer = setTimeout(() => finish(verdictOr('timeout')), timeoutMs);
    client.on('readable', onReadable);
    client.on('error', onError);
    serverFirst?.once('readable', onAbort);
  });
}
