// Reads a YAML or JSON config file, validates it, and turns it into the
// models the gateway runs with. Every error names the field and the reason.
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLError } from 'yaml';
import type { z } from 'zod';
import { configSchema, type ConfigFile } from './schema.js';
import { ConfigError } from './config-error.js';
import { knownKeys, unknownKeyAdvice } from './config-keys.js';
import { describeYamlError } from './yaml-error.js';

function fieldPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(top level)';
}

export function formatIssues(file: string, issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      if (i.code === 'unrecognized_keys') {
        const at = i.path.length ? `${fieldPath(i.path)}.` : '';
        const known = knownKeys(configSchema, i.path);
        return i.keys.map((k) => `${file}: ${at}${k}: ${unknownKeyAdvice(k, known)}`).join('\n');
      }
      return `${file}: ${fieldPath(i.path)}: ${i.message}`;
    })
    .join('\n');
}

/** Parses and validates; throws ConfigError with one line per problem. */
export function readConfig(file: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    // YAML is a superset of JSON, so one parser reads both
    raw = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    if (e instanceof YAMLError) throw new ConfigError(`${file}: not valid YAML/JSON: ${describeYamlError(file, text, e).slice(file.length + 2)}`);
    throw new ConfigError(`${file}: not valid YAML/JSON: ${(e as Error).message}`);
  }
  // an empty file (or only comments) is most likely the wrong file: say so rather than run with nothing
  if (raw === null || raw === undefined || (typeof raw === 'object' && !Array.isArray(raw) && Object.keys(raw).length === 0)) {
    throw new ConfigError(`${file}: holds no settings (empty, or only comments); a config names a mode, hosts, rules, upstreams... (see tunsteer.example.yaml)`);
  }
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(file, r.error.issues));
  return r.data;
}

/** The file --config names, or an empty config when there is none. */
export function loadConfigFile(file: string | undefined): ConfigFile {
  return file === undefined ? {} : readConfig(file);
}

export { SecretValueError, parseHostPort, readSecret, rulesOf, toRule, upstreamModels, upstreamsOf } from './config-models.js';
