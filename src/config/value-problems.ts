// Why a value from the config cannot go on the wire: plain functions, apart from the schema
// (zod), so the data plane checks the secrets it reads without loading the config parser.

/**
 * Why a header value or credential cannot go on the wire, or null: RFC 9110
 * §5.5 allows visible characters, space, tab and obs-text in a field value,
 * never CR, LF, NUL or another control (a CR LF would start a header of the
 * value's own).
 */
export function fieldValueProblem(v: string): string | null {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c > 0xff) return `holds a character outside Latin-1 at position ${i} (encode it first)`;
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
      const name = c === 0x0d ? 'CR' : c === 0x0a ? 'LF' : c === 0 ? 'NUL' : `control 0x${c.toString(16).padStart(2, '0')}`;
      return `holds ${name} at position ${i}: not allowed in an HTTP field value (RFC 9110 §5.5)`;
    }
  }
  return null;
}

/**
 * Why a proxy credential cannot be sent to this kind of upstream, or null:
 * bytes a field value may not hold (HTTP CONNECT sends it in
 * Proxy-Authorization), a ':' in an HTTP username (RFC 7617 §2), more than
 * 255 bytes for SOCKS5 (RFC 1929 §2).
 */
export function credentialProblem(type: 'socks5' | 'http', value: string, what: 'username' | 'password'): string | null {
  const p = fieldValueProblem(value);
  if (p) return p;
  if (type === 'http' && what === 'username' && value.includes(':')) return 'an HTTP proxy username may not hold ":" (RFC 7617 §2)';
  if (type === 'socks5' && (Buffer.byteLength(value, 'utf8') > 255 || value.length === 0)) return `a SOCKS5 ${what} is 1 to 255 bytes (RFC 1929 §2)`;
  return null;
}
