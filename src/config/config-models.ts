// The models the gateway runs with, from a validated config: rules, upstreams, secrets. Apart
// from load-config.ts (the YAML parser and the zod schema, 12 MB of a process's memory), so the
// data plane, which gets a validated config over IPC, builds its policy without loading them.
import { readFileSync } from 'node:fs';
import type { ConfigFile, RuleConfig } from './schema.js';
import type { PortRange, Rule, RuleAction, RuleMatch } from '../proxy/rules/rule-types.js';
import { cidrMatch } from '../proxy/rules/cidr-match.js';
import type { UpstreamProxy } from '../proxy/upstream-proxies.js';
import { ConfigError } from './config-error.js';
import { addOwnerKeys } from './owner-keys.js';
import { credentialProblem, fieldValueProblem } from './value-problems.js';

/** A secret that is there but cannot go on the wire: an error for check-config too, not a warning. */
export class SecretValueError extends ConfigError {}

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
