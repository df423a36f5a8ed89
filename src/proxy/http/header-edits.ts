// Applies a rule's header edits to a request's raw header list (name, value,
// name, value...), keeping every other header's case and order as sent.
// A name matches in any case and with '_' for '-': CGI-style servers (WSGI,
// PHP, Rack) read "X_Api_Key" and "X-Api-Key" as one variable, so a header a
// rule removes or sets must not come back under the other spelling.

export type HeaderEdit = { op: 'set'; name: string; value: string } | { op: 'remove'; name: string };

export function applyHeaderEdits(raw: readonly string[], edits: readonly HeaderEdit[]): string[] {
  if (edits.length === 0) return raw.slice();
  const drop = new Set(edits.map((e) => fold(e.name)));
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!drop.has(fold(raw[i]))) out.push(raw[i], raw[i + 1]);
  }
  for (const e of edits) if (e.op === 'set') out.push(e.name, e.value);
  return out;
}

/** The value of a header in a raw list, first occurrence, or undefined. */
export function rawHeader(raw: readonly string[], name: string): string | undefined {
  const n = name.toLowerCase();
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === n) return raw[i + 1];
  return undefined;
}

const fold = (name: string) => name.toLowerCase().replaceAll('_', '-');

/**
 * Without the h2c upgrade (RFC 9113 §3.1 deprecates it): after a 101 the
 * connection would carry HTTP/2 streams no rule sees. The server answers in
 * HTTP/1.1 instead. Other upgrades (WebSocket) are left alone.
 */
export function withoutH2cUpgrade(raw: string[]): string[] {
  let h2c = false;
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === 'upgrade' && /(^|,)\s*h2c\s*(,|$)/i.test(raw[i + 1])) h2c = true;
  if (!h2c) return raw;
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (k === 'upgrade' || k === 'http2-settings') continue;
    if (k === 'connection') {
      const rest = raw[i + 1]
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t && !/^(upgrade|http2-settings)$/i.test(t));
      if (rest.length) out.push(raw[i], rest.join(', '));
      continue;
    }
    out.push(raw[i], raw[i + 1]);
  }
  return out;
}
