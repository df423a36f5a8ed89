// Applies a rule's header edits to a request's raw header list (name, value,
// name, value...), keeping every other header's case and order as sent.

export type HeaderEdit = { op: 'set'; name: string; value: string } | { op: 'remove'; name: string };

export function applyHeaderEdits(raw: readonly string[], edits: readonly HeaderEdit[]): string[] {
  if (edits.length === 0) return raw.slice();
  const drop = new Set(edits.map((e) => e.name.toLowerCase()));
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!drop.has(raw[i].toLowerCase())) out.push(raw[i], raw[i + 1]);
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
