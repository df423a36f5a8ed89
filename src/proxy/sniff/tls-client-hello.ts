// Reads just enough of a TLS ClientHello at the start of a stream to learn
// the server name (SNI) and the ALPN protocols the client asks for. Our own
// parser: pure, bounded (at most 16 KiB of handshake data is looked at or
// copied), never throws and never reads past buf.length.
//
// It takes what OpenSSL (nginx) takes, tried with raw bytes: any record minor
// version, any legacy_version, empty records before the hello, the hello
// split over several records. A hello that is TLS but whose name cannot be
// read for certain (malformed, larger than the bound, two host names, a name
// no rule could match) is 'unreadable': the proxy core treats it as unknown
// traffic, which rules can reject, never as a TLS connection without a name.
//
// Verdicts are stable: once a prefix of a stream gets a verdict other than
// 'need-more', any longer prefix gets the same answer.

export type TlsSniff =
  | { kind: 'tls'; sni?: string; alpn?: string[]; ech?: true }
  | { kind: 'need-more' } // a valid prefix of a TLS handshake record, but incomplete
  | { kind: 'unreadable'; reason: string }
  | { kind: 'not-tls' };

const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** Plaintext records may not carry more than 2^14 bytes (RFC 8446 §5.1); OpenSSL refuses longer ones. */
const MAX_RECORD = 16384;
/** Handshake bytes we are willing to reassemble; a bigger hello is unreadable. */
export const MAX_HELLO = 16 * 1024;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_ECH = 0xfe0d;

type Header = 'ok' | 'short' | 'bad';

/** Checks the 5-byte record header at `off` as far as the bytes go, so garbage is refused early. */
function recordHeader(buf: Buffer, off: number): Header {
  const n = buf.length - off;
  if (n < 1) return 'short';
  if (buf[off] !== CONTENT_HANDSHAKE) return 'bad';
  if (n < 2) return 'short';
  // the first record's minor version is not checked by servers (RFC 8446 §5.1: legacy_record_version)
  if (buf[off + 1] !== 3) return 'bad';
  if (n < 4) return 'short';
  // a high byte above 0x40 already means a length over 2^14
  if (buf[off + 3] > MAX_RECORD >> 8) return 'bad';
  if (n < 5) return 'short';
  if (buf.readUInt16BE(off + 3) > MAX_RECORD) return 'bad';
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

  // Gather the hello's bytes from as many handshake records as it spans (empty
  // ones included: OpenSSL skips them). Slices of buf, copied only when there is more than one.
  const parts: Buffer[] = [];
  let have = 0;
  let want = MAX_HELLO + 1; // narrowed to the hello's own size once its length is in
  let broken = false; // a later record header is wrong: the hello can never be completed
  let off = 0;
  while (have < want) {
    const h = recordHeader(buf, off);
    if (h === 'short') break;
    if (h === 'bad') {
      broken = true;
      break;
    }
    const start = off + 5;
    const len = buf.readUInt16BE(off + 3);
    const end = Math.min(start + len, buf.length, start + (want - have));
    if (end > start) parts.push(buf.subarray(start, end));
    have += end - start;
    // a client's first handshake message must be its ClientHello
    if (have >= 1 && byteAt(parts, 0) !== HANDSHAKE_CLIENT_HELLO) return { kind: 'not-tls' };
    // a longer hello is unreadable once its length is in: no need to gather it
    if (want === MAX_HELLO + 1 && have >= 4) want = Math.min(MAX_HELLO, 4 + ((byteAt(parts, 1) << 16) | (byteAt(parts, 2) << 8) | byteAt(parts, 3)));
    if (start + len > buf.length) break; // this record is still arriving
    off = start + len;
  }
  const data = parts.length === 1 ? parts[0] : Buffer.concat(parts, have);
  return readClientHello(data, broken);
}

/**
 * A ClientHello handshake message (from its 4-byte header on) as far as it
 * has arrived: from TLS records above, or from QUIC CRYPTO frames.
 * `final`: no more bytes can come.
 */
export function readClientHello(data: Buffer, final: boolean): TlsSniff {
  if (data.length >= 1 && data[0] !== HANDSHAKE_CLIENT_HELLO) return { kind: 'not-tls' };
  if (data.length < 4) return final ? { kind: 'unreadable', reason: 'truncated hello' } : { kind: 'need-more' };
  const msgEnd = 4 + data.readUIntBE(1, 3);
  if (msgEnd > MAX_HELLO) return { kind: 'unreadable', reason: 'hello larger than 16 KiB' };
  const found: { sni?: string; alpn?: string[]; ech?: true; bad?: string } = {};
  const r = parseHello(data, msgEnd, final, found);
  if (r === MORE) return { kind: 'need-more' };
  if (r === STOP) return { kind: 'unreadable', reason: 'malformed hello' };
  if (found.bad !== undefined) return { kind: 'unreadable', reason: found.bad };
  const out: TlsSniff = { kind: 'tls' };
  if (found.sni !== undefined) out.sni = found.sni;
  if (found.alpn !== undefined) out.alpn = found.alpn;
  if (found.ech) out.ech = true;
  return out;
}

const MORE = -1; // the field lies inside the message but its bytes have not arrived
const STOP = -2; // the field can never be read: a length points past its container
const DONE = 0;

/**
 * Walks the ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) in `d`,
 * which starts at the handshake header and may be incomplete. Returns MORE,
 * STOP (malformed, as a server would refuse it) or DONE; `found.bad` says why
 * a well-formed hello's name still cannot be trusted.
 */
function parseHello(d: Buffer, msgEnd: number, final: boolean, found: { sni?: string; alpn?: string[]; ech?: true; bad?: string }): number {
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

  let p = need(4, 2 + 32, msgEnd); // legacy_version (any: servers ignore it when supported_versions is sent), random
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
  // the block must fill the rest of the hello exactly (OpenSSL refuses it otherwise)
  const extEnd = extStart + d.readUInt16BE(p);
  if (extEnd !== msgEnd) return STOP;
  const seen = new Set<number>();
  for (p = extStart; p < extEnd;) {
    const body = need(p, 4, extEnd);
    if (body < 0) return body;
    const type = d.readUInt16BE(p);
    const end = vector(p + 2, 2, extEnd);
    if (end < 0) return end;
    // duplicates are illegal (RFC 8446 §4.2) and servers refuse them; which one counts is anyone's guess
    if (seen.has(type) && (type === EXT_SERVER_NAME || type === EXT_ALPN)) found.bad ??= `two extensions of type ${type}`;
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const sni = serverName(d, body, end);
      if (typeof sni === 'string') found.sni ??= sni;
      else found.bad ??= sni.bad;
    } else if (type === EXT_ALPN) {
      const alpn = alpnProtocols(d, body, end);
      if (alpn.length > 0) found.alpn ??= alpn;
    } else if (type === EXT_ECH) {
      // the real name is encrypted; the SNI is the outer, public one (draft-ietf-tls-esni)
      found.ech = true;
    }
    p = end;
  }
  return DONE;
}

/**
 * The host_name of a server_name extension body in [s, e) (RFC 6066 §3), or
 * why there is none a rule could rely on. Other name types are skipped (Go
 * does; OpenSSL refuses them); a second host_name is refused, as both do.
 */
function serverName(d: Buffer, s: number, e: number): string | { bad: string } {
  if (s + 2 > e || s + 2 + d.readUInt16BE(s) !== e) return { bad: 'server_name list length' };
  let name: string | undefined;
  for (let p = s + 2; p < e;) {
    if (p + 3 > e) return { bad: 'server_name entry length' };
    const nameType = d[p];
    const nameEnd = p + 3 + d.readUInt16BE(p + 1);
    if (nameEnd > e) return { bad: 'server_name entry length' };
    if (nameType === 0) {
      if (name !== undefined) return { bad: 'two host names' };
      name = hostName(d, p + 3, nameEnd);
      if (name === undefined) return { bad: 'server name is not a DNS name' };
    }
    p = nameEnd;
  }
  return name ?? { bad: 'no host_name' };
}

/** A DNS name in [s, e) lower-cased, or undefined when it is not one a rule could match. */
function hostName(d: Buffer, s: number, e: number): string | undefined {
  // "example.com." names the same host (nginx strips the dot); RFC 6066 forbids it but clients send it
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
  for (let p = s + 2; p < listEnd;) {
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
