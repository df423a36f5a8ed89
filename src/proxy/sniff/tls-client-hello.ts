// Reads just enough of a TLS ClientHello at the start of a stream to learn
// the server name (SNI) and the ALPN protocols the client asks for. Our own
// parser: pure, bounded (at most 16 KiB of handshake data is looked at or
// copied), never throws and never reads past buf.length.
//
// Verdicts are stable: once a prefix of a stream gets 'tls' or 'not-tls',
// any longer prefix gets the same answer, so callers may decide on the
// first verdict that is not 'need-more'.

export type TlsSniff =
  | { kind: 'tls'; sni?: string; alpn?: string[] }
  | { kind: 'need-more' } // a valid prefix of a TLS handshake record, but incomplete
  | { kind: 'not-tls' };

const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** Plaintext records may not carry more than 2^14 bytes (RFC 8446 §5.1). */
const MAX_RECORD = 16384;
/** Handshake bytes we are willing to reassemble; bigger hellos are TLS without a name. */
const MAX_HELLO = 16 * 1024;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

type Header = 'ok' | 'short' | 'bad';

/** Checks the 5-byte record header at `off` as far as the bytes go, so garbage is refused early. */
function recordHeader(buf: Buffer, off: number): Header {
  const n = buf.length - off;
  if (n < 1) return 'short';
  if (buf[off] !== CONTENT_HANDSHAKE) return 'bad';
  if (n < 2) return 'short';
  if (buf[off + 1] !== 3) return 'bad';
  if (n < 3) return 'short';
  const minor = buf[off + 2];
  if (minor < 1 || minor > 4) return 'bad';
  if (n < 4) return 'short';
  // a high byte above 0x40 already means a length over 2^14
  if (buf[off + 3] > MAX_RECORD >> 8) return 'bad';
  if (n < 5) return 'short';
  const len = buf.readUInt16BE(off + 3);
  // empty handshake fragments are forbidden (RFC 8446 §5.1)
  if (len === 0 || len > MAX_RECORD) return 'bad';
  return 'ok';
}

/** Byte `i` of the concatenation of `parts` (the caller knows it exists). */
function byteAt(parts: Buffer[], i: number): number {
  for (const p of parts) {
    if (i < p.length) return p[i];
    i -= p.length;
  }
  return 0;
}

export function sniffTlsClientHello(buf: Buffer): TlsSniff {
  const first = recordHeader(buf, 0);
  if (first === 'bad') return { kind: 'not-tls' };
  if (first === 'short') return { kind: 'need-more' };
  // a client's first handshake message must be its ClientHello
  if (buf.length > 5 && buf[5] !== HANDSHAKE_CLIENT_HELLO) return { kind: 'not-tls' };

  // Gather the hello's bytes from as many handshake records as it spans.
  // Slices of buf, copied only when there is more than one.
  const parts: Buffer[] = [];
  let have = 0;
  let want = MAX_HELLO; // narrowed to the hello's own size once its length is in
  let broken = false; // a later record header is wrong: the hello can never be completed
  let off = 0;
  while (have < want) {
    const h = recordHeader(buf, off);
    if (h === 'short') break;
    if (h === 'bad') {
      // off > 0 here: the first header was fine
      broken = true;
      break;
    }
    const start = off + 5;
    const len = buf.readUInt16BE(off + 3);
    const end = Math.min(start + len, buf.length, start + (want - have));
    parts.push(buf.subarray(start, end));
    have += end - start;
    if (want === MAX_HELLO && have >= 4) {
      const helloLen = (byteAt(parts, 1) << 16) | (byteAt(parts, 2) << 8) | byteAt(parts, 3);
      want = Math.min(MAX_HELLO, 4 + helloLen);
    }
    if (start + len > buf.length) break; // this record is still arriving
    off = start + len;
  }
  let data = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
  if (data.length > want) data = data.subarray(0, want);
  const final = broken || data.length >= want;

  if (data.length < 4) return final ? { kind: 'tls' } : { kind: 'need-more' };
  const msgEnd = 4 + data.readUIntBE(1, 3);
  // legacy_version is 3.x, x <= 4 (TLS 1.3 clients put 3.3 here, RFC 8446 §4.1.2)
  if (data.length > 4 && data[4] !== 3) return { kind: 'not-tls' };
  if (data.length > 5 && data[5] > 4) return { kind: 'not-tls' };
  // No verdict until the version bytes are in (or never can be): they may still
  // say not-tls, and a hello too short for its fields would otherwise say tls first.
  if (data.length < 6 && !final) return { kind: 'need-more' };
  if (msgEnd > MAX_HELLO) {
    // too big to reassemble, but wait for the version bytes so the verdict is stable
    return data.length >= 6 || final ? { kind: 'tls' } : { kind: 'need-more' };
  }

  const found: { sni?: string; alpn?: string[] } = {};
  const r = parseHello(data, msgEnd, final, found);
  if (r === MORE) return { kind: 'need-more' };
  const out: TlsSniff = { kind: 'tls' };
  if (found.sni !== undefined) out.sni = found.sni;
  if (found.alpn !== undefined) out.alpn = found.alpn;
  return out;
}

const MORE = -1; // the field lies inside the message but its bytes have not arrived
const STOP = -2; // the field can never be read: a length points past its container
const DONE = 0;

/**
 * Walks the ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) in `d`,
 * which starts at the handshake header and may be incomplete. Returns MORE,
 * STOP (malformed: keep what was found) or DONE.
 */
function parseHello(d: Buffer, msgEnd: number, final: boolean, found: { sni?: string; alpn?: string[] }): number {
  // End of [at, at+n) when it is inside `limit` and here; otherwise why not.
  const need = (at: number, n: number, limit: number): number => {
    const end = at + n;
    if (end > limit) return STOP;
    if (end > d.length) return final ? STOP : MORE;
    return end;
  };
  // End of the vector at `at` whose length prefix is `w` bytes wide.
  const vector = (at: number, w: 1 | 2, limit: number): number => {
    const h = need(at, w, limit);
    if (h < 0) return h;
    return need(h, w === 1 ? d[at] : d.readUInt16BE(at), limit);
  };

  let p = need(4, 2 + 32, msgEnd); // legacy_version, random
  if (p < 0) return p;
  p = vector(p, 1, msgEnd); // legacy_session_id
  if (p < 0) return p;
  p = vector(p, 2, msgEnd); // cipher_suites
  if (p < 0) return p;
  p = vector(p, 1, msgEnd); // legacy_compression_methods
  if (p < 0) return p;
  // SSL 3.0 / early TLS clients may end the hello without extensions
  if (p === msgEnd) return DONE;
  const extStart = need(p, 2, msgEnd);
  if (extStart < 0) return extStart;
  // an over-long block length still lets us read the extensions that fit
  const extEnd = Math.min(extStart + d.readUInt16BE(p), msgEnd);
  let seenSni = false;
  let seenAlpn = false;
  for (p = extStart; p < extEnd; ) {
    const body = need(p, 4, extEnd);
    if (body < 0) return body;
    const type = d.readUInt16BE(p);
    const end = vector(p + 2, 2, extEnd);
    if (end < 0) return end;
    // duplicates are illegal (RFC 8446 §4.2); the first one counts
    if (type === EXT_SERVER_NAME && !seenSni) {
      seenSni = true;
      const sni = serverName(d, body, end);
      if (sni !== undefined) found.sni = sni;
    } else if (type === EXT_ALPN && !seenAlpn) {
      seenAlpn = true;
      const alpn = alpnProtocols(d, body, end);
      if (alpn.length > 0) found.alpn = alpn;
    }
    p = end;
  }
  return DONE;
}

/** The first host_name of a server_name extension body in [s, e) (RFC 6066 §3). */
function serverName(d: Buffer, s: number, e: number): string | undefined {
  if (s + 2 > e) return undefined;
  const listEnd = Math.min(s + 2 + d.readUInt16BE(s), e);
  for (let p = s + 2; p + 3 <= listEnd; ) {
    const nameType = d[p];
    const nameEnd = p + 3 + d.readUInt16BE(p + 1);
    if (nameEnd > listEnd) return undefined;
    // only one host_name is allowed; other name types are skipped
    if (nameType === 0) return hostName(d, p + 3, nameEnd);
    p = nameEnd;
  }
  return undefined;
}

/** A DNS name in [s, e) lower-cased, or undefined when it is not one a rule could match. */
function hostName(d: Buffer, s: number, e: number): string | undefined {
  // "example.com." names the same host; RFC 6066 forbids the dot but clients send it
  if (e > s && d[e - 1] === 0x2e) e--;
  if (e - s < 1 || e - s > 253) return undefined;
  let label = 0;
  for (let i = s; i < e; i++) {
    const c = d[i];
    if (c === 0x2e) {
      if (label === 0) return undefined;
      label = 0;
      continue;
    }
    const letterOrDigit = (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a);
    // '_' is not legal in host names but is common in real DNS names
    if (!letterOrDigit && c !== 0x2d && c !== 0x5f) return undefined;
    if (++label > 63) return undefined;
  }
  if (label === 0) return undefined;
  return d.toString('latin1', s, e).toLowerCase();
}

/** Protocol names of an ALPN extension body in [s, e) (RFC 7301 §3.1). */
function alpnProtocols(d: Buffer, s: number, e: number): string[] {
  const out: string[] = [];
  if (s + 2 > e) return out;
  const listEnd = Math.min(s + 2 + d.readUInt16BE(s), e);
  for (let p = s + 2; p < listEnd; ) {
    const n = d[p];
    const end = p + 1 + n;
    if (n === 0 || end > listEnd) break;
    // names are opaque bytes; only printable ones can be matched by a rule
    let printable = true;
    for (let i = p + 1; i < end; i++) if (d[i] < 0x21 || d[i] > 0x7e) printable = false;
    if (printable) out.push(d.toString('latin1', p + 1, end));
    p = end;
  }
  return out;
}
