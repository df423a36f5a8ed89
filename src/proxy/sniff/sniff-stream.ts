// Looks at the first bytes a client sends to learn what the stream is (HTTP
// request head, TLS ClientHello, or opaque TCP), then puts them back so the
// upstream receives them unchanged. A short timeout keeps server-speaks-first
// protocols (SSH, SMTP) from waiting on a client that says nothing.
import type { Duplex } from 'node:stream';
import { sniffHttpHead } from './http-head.js';
import { sniffTlsClientHello } from './tls-client-hello.js';

export interface Sniffed {
  protocol: 'http' | 'tls' | 'tcp';
  /** Host header or SNI, lower case. */
  host?: string;
  alpn?: string[];
  method?: string;
  path?: string;
  /** Why sniffing stopped: a verdict, the timeout, the client's FIN, or the bound. */
  by: 'verdict' | 'timeout' | 'end' | 'limit' | 'aborted';
}

/** The most we hold back from the upstream while deciding. */
// a 16 KiB ClientHello plus its record headers still fits
const SNIFF_LIMIT = 17 * 1024;

export function classify(buf: Buffer): Sniffed | null {
  if (buf.length === 0) return null;
  const tls = sniffTlsClientHello(buf);
  if (tls.kind === 'tls') return { protocol: 'tls', host: tls.sni, alpn: tls.alpn, by: 'verdict' };
  const http = sniffHttpHead(buf);
  if (http.kind === 'http') return { protocol: 'http', host: http.host, method: http.method, path: http.path, by: 'verdict' };
  if (tls.kind === 'not-tls' && http.kind === 'not-http') return { protocol: 'tcp', by: 'verdict' };
  return null;
}

/**
 * Resolves once the stream's kind is known. The bytes read stay in the
 * stream (unshifted), so whoever reads it next sees them first. `abort`
 * ends the wait early, for example when the server speaks first.
 */
export function sniffStream(client: Duplex, timeoutMs: number, abort?: AbortSignal): Promise<Sniffed> {
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
      abort?.removeEventListener('abort', onAbort);
      // unshift is allowed until 'end' is emitted, which only happens once the buffer is read empty
      if (length > 0 && !client.destroyed) client.unshift(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length));
      resolve(result);
    };
    const verdictOr = (by: Sniffed['by']): Sniffed => {
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, length);
      return classify(all) ?? { protocol: 'tcp', by };
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
      if (length >= SNIFF_LIMIT) return finish({ protocol: 'tcp', by: 'limit' });
      if (sawEof()) finish(verdictOr('end'));
    };
    // Node has no public "EOF seen, 'end' not yet emitted" flag
    const sawEof = () => (client as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true;
    const onError = () => finish({ protocol: 'tcp', by: 'end' });
    const onAbort = () => finish(verdictOr('aborted'));
    const timer = setTimeout(() => finish(verdictOr('timeout')), timeoutMs);
    client.on('readable', onReadable);
    client.on('error', onError);
    if (abort?.aborted) return onAbort();
    abort?.addEventListener('abort', onAbort, { once: true });
  });
}
