// The config's rule-set and owner parts, kept out of schema.ts so they merge
// on their own: the top-level `rule_sets` (named files), and the rule keys
// `rule_set`, `user` and `process`.
//
//   rule_sets:
//     ads: /etc/tunsteer/ads.txt                 # plain text, one entry a line
//     cn: { path: geoip-cn.json, format: sing-box }
//   rules:
//     - { rule_set: ads, action: reject }
//     - { user: [alice, 1000-1999], action: proxy, upstream: corp }
//     - { process: [curl, /usr/bin/wget], action: direct }
import { resolve } from 'node:path';
import { z } from 'zod';
import { uidOfName } from './owner-keys.js';

const setName = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'rule-set names are A-Z a-z 0-9 _ . -');
const setPath = z
  .string()
  .min(1)
  .transform((p) => resolve(p));

export const ruleSetEntrySchema = z.union([
  setPath.transform((path) => ({ path, format: undefined as 'text' | 'sing-box' | undefined })),
  z.strictObject({ path: setPath, format: z.enum(['text', 'sing-box']).optional() }),
]);

export const ruleSetsSchema = z.record(setName, ruleSetEntrySchema);

const oneOrMany = <T extends z.ZodType>(t: T) => z.union([t, z.array(t).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

/** A user: a uid, a range "1000-1999", or a name from /etc/passwd. */
const userSpec = z.union([z.number().int().min(0).max(0xfffffffe), z.string().min(1)]).superRefine((u, ctx) => {
  if (typeof u === 'number') return;
  const range = /^(\d+)-(\d+)$/.exec(u);
  if (range) {
    if (Number(range[1]) > Number(range[2])) ctx.addIssue({ code: 'custom', message: `a uid range is from-to with from <= to, not ${u}` });
    return;
  }
  if (/^\d+$/.test(u)) return;
  if (uidOfName(u) === undefined) ctx.addIssue({ code: 'custom', message: `no user "${u}" in /etc/passwd (give a uid, a range such as 1000-1999, or a user name)` });
});

const processSpec = z
  .string()
  .min(1)
  .refine((p) => !p.includes('/') || p.startsWith('/'), 'a process is an executable name (curl) or its absolute path (/usr/bin/curl)');

/** Spread into the rule schema. */
export const ruleOwnerKeys = {
  rule_set: oneOrMany(setName).optional(),
  user: oneOrMany(userSpec).optional(),
  process: oneOrMany(processSpec).optional(),
};

interface OwnerKeys {
  rule_set?: string[];
  user?: (number | string)[];
  process?: string[];
}

/** Problems with rule_set names, as [path, message] for the schema's superRefine. */
export function ruleSetReferenceProblems(c: { rule_sets?: Record<string, unknown>; rules?: OwnerKeys[] }): [PropertyKey[], string][] {
  const names = Object.keys(c.rule_sets ?? {});
  const out: [PropertyKey[], string][] = [];
  (c.rules ?? []).forEach((r, i) => {
    for (const n of r.rule_set ?? []) {
      if (!names.includes(n)) out.push([['rules', i, 'rule_set'], `unknown rule_set "${n}" (${names.length ? `known: ${names.join(', ')}` : 'no rule_sets are configured'})`]);
    }
  });
  return out;
}

export { addOwnerKeys, processMatchOf, uidRangeOf } from './owner-keys.js';
