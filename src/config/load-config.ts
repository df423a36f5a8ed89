// Reads a YAML or JSON config file, validates it, and turns it into the
// models the gateway runs with. Every error names the field and the reason.
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLError } from 'yaml';
import type { z } from 'zod';
import { configSchema, credentialProblem, fieldValueProblem, type ConfigFile, type RuleConfig } from './schema.js';
import type { PortRange, Rule, RuleAction, RuleMatch } from '../proxy/rules/rule-types.js';
import { cidrMatch } from '../proxy/rules/cidr-match.js';
import type { UpstreamProxy } from '../proxy/upstream-proxies.js';
import { ConfigError } from './config-error.js';
import { knownKeys, unknownKeyAdvice } from './config-keys.js';
import { describeYamlError } from './yaml-error.js';
import { addOwnerKeys } from './rule-set-config.js';

/** A secret that is there but cannot go on the wire: an error for check-config too, not a warning. */
export class SecretValueError extends ConfigError {}

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

function portRange(p: number | string): PortRange {
  if (typeof p === 'number') return { from: p, to: p };
  const [a, b = a] = p.split('-').map(Number);
  return { from: a, to: b };
}

export function toRule(r: RuleConfig, index: number): Rule {
  const match: RuleMatch = {};
  if (r.domain) match.domain = r.domain;
  if (r.domain_suffix) match.domainSuffix = r.domain_suffix;
  if (r.domain_keyword) match.domainKeyword = r.domain_keyword;
  if (r.cidr) match.cidr = r.cidr.map((c) => cidrMatch(c)!);
  if (r.port) match.port = r.port.map(portRange);
  if (r.protocol) match.protocol = r.protocol;
  if (r.source_cidr) match.sourceCidr = r.source_cidr.map((c) => cidrMatch(c)!);
  addOwnerKeys(r, match);
  let action: RuleAction;
  switch (r.action) {
    case 'direct':
    case 'reject':
      action = { type: r.action };
      break;
    case 'proxy':
      action = { type: 'proxy', upstream: r.upstream! };
      break;
    case 'set-header':
      action = {
        type: 'set-header',
        header: r.header!,
        value: r.value_env !== undefined ? { env: r.value_env } : { file: r.value_file! },
        upstream: r.upstream,
      };
      if (r.upstream_tls !== undefined) {
        const o = r.upstream_tls === true ? {} : r.upstream_tls;
        action.upstreamTls = { port: o.port ?? 443, ...(o.ca_file !== undefined ? { caFile: o.ca_file } : {}) };
      }
      break;
    case 'remove-header':
      action = { type: 'remove-header', header: r.header!, upstream: r.upstream };
      break;
  }
  return { index, name: r.name, match, action };
}

export function rulesOf(c: Pick<ConfigFile, 'rules'>): Rule[] {
  return (c.rules ?? []).map(toRule);
}

function splitAddress(a: string): { host: string; port: number } {
  const colon = a.lastIndexOf(':');
  const host = a.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(a.slice(colon + 1)) };
}

export { splitAddress as parseHostPort };

/**
 * Reads a secret named by `env` or `file` (one trailing newline of a file
 * trimmed: people write secrets with echo); the value never appears in an
 * error. `check` says why the value cannot go on the wire.
 */
export function readSecret(
  where: string,
  src: { env: string } | { file: string },
  env: NodeJS.ProcessEnv = process.env,
  check: (v: string) => string | null = fieldValueProblem,
): string {
  let v: string | undefined;
  if ('env' in src) {
    v = env[src.env];
    if (v === undefined) throw new ConfigError(`${where}: environment variable ${src.env} is not set`);
  } else {
    try {
      v = readFileSync(src.file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new ConfigError(`${where}: cannot read ${src.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
  const problem = check(v);
  if (problem) throw new SecretValueError(`${where}: the value of ${'env' in src ? `environment variable ${src.env}` : src.file} ${problem}`);
  return v;
}

export function upstreamsOf(c: Pick<ConfigFile, 'upstreams'>, env: NodeJS.ProcessEnv = process.env): Map<string, UpstreamProxy> {
  const passwords: Record<string, string> = {};
  for (const [name, u] of Object.entries(c.upstreams ?? {})) {
    const check = (v: string) => credentialProblem(u.type, v, 'password');
    if (u.password_env !== undefined) passwords[name] = readSecret(`upstreams.${name}.password_env`, { env: u.password_env }, env, check);
    if (u.password_file !== undefined) passwords[name] = readSecret(`upstreams.${name}.password_file`, { file: u.password_file }, env, check);
  }
  return upstreamModels(c, passwords);
}

/** The upstreams with their passwords already read (by name): reads nothing. */
export function upstreamModels(c: Pick<ConfigFile, 'upstreams'>, passwords: Readonly<Record<string, string>>): Map<string, UpstreamProxy> {
  const out = new Map<string, UpstreamProxy>();
  for (const [name, u] of Object.entries(c.upstreams ?? {})) {
    const { host, port } = splitAddress(u.address);
    out.set(name, { name, type: u.type, host, port, username: u.username, password: passwords[name] });
  }
  return out;
}
