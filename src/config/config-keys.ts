// The keys a config object may hold at a given path, read from the schema
// itself, and what a key that is not one of them gets told: "did you mean",
// or, for a secret written inline, where secrets go instead.
import type { z } from 'zod';
import { didYouMean } from './did-you-mean.js';

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; element?: z.ZodType; valueType?: z.ZodType; in?: z.ZodType; options?: z.ZodType[] };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The object schemas a value at this path may be (unions give several). */
function objectsAt(schema: z.ZodType, path: readonly PropertyKey[]): Def[] {
  const d = defOf(schema);
  switch (d.type) {
    case 'optional':
    case 'nullable':
    case 'default':
      return objectsAt(d.innerType!, path);
    case 'pipe':
      return objectsAt(d.in!, path);
    case 'union':
      return d.options!.flatMap((o) => objectsAt(o, path));
  }
  if (path.length === 0) return d.type === 'object' ? [d] : [];
  const [head, ...rest] = path;
  if (d.type === 'object') return d.shape![String(head)] ? objectsAt(d.shape![String(head)], rest) : [];
  if (d.type === 'array' && typeof head === 'number') return objectsAt(d.element!, rest);
  if (d.type === 'record') return objectsAt(d.valueType!, rest);
  return [];
}

export function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  return [...new Set(objectsAt(schema, path).flatMap((d) => Object.keys(d.shape ?? {})))];
}

/** Key names that hold a secret when written inline. */
const SECRET_KEY = /^(pass(word|wd|phrase)?|secret|token|api_?key|apikey|private_key|credentials?|auth(orization)?|bearer|value|header_value|cookie)$/i;

/** What to say about an unknown key (or a known one that must not hold a secret inline), without its value. */
export function unknownKeyAdvice(key: string, known: readonly string[]): string {
  if (SECRET_KEY.test(key)) {
    const env = known.find((k) => k === `${key}_env`) ?? known.find((k) => k.endsWith('_env'));
    const file = known.find((k) => k === `${key}_file`) ?? known.find((k) => k.endsWith('_file'));
    return `secrets never go in the config text: ${env && file ? `use ${env} (an environment variable) or ${file} (a file holding it)` : 'name an environment variable (..._env) or a file (..._file) where this setting takes one'}`;
  }
  const near = didYouMean(key, known);
  if (near) return `unknown field (did you mean ${near}?)`;
  return `unknown field${known.length && known.length <= 12 ? ` (known here: ${known.join(', ')})` : ''}`;
}
