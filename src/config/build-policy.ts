// From a validated config to the proxy core's Policy: rules compiled, upstream
// passwords and header values read from where the config points (environment
// or file), once at startup, and refused when they cannot go on the wire.
import { readFileSync } from 'node:fs';
import type { ConfigFile } from './schema.js';
import { SecretValueError, readSecret, rulesOf, upstreamsOf } from './load-config.js';
import { ConfigError } from './config-error.js';
import { Policy } from '../proxy/policy.js';

export function policyFromConfig(c: ConfigFile, env: NodeJS.ProcessEnv = process.env): Policy {
  const rules = rulesOf(c);
  const values = new Map<number, string>();
  const caFiles = new Map<string, string>();
  for (const r of rules) {
    if (r.action.type !== 'set-header') continue;
    const field = 'env' in r.action.value ? 'value_env' : 'value_file';
    values.set(r.index, readSecret(`rules[${r.index}].${field}`, r.action.value, env));
    const ca = r.action.upstreamTls?.caFile;
    if (ca !== undefined && !caFiles.has(ca)) {
      try {
        caFiles.set(ca, readFileSync(ca, 'utf8'));
      } catch (e) {
        throw new ConfigError(`rules[${r.index}].upstream_tls.ca_file: cannot read ${ca}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
  }
  return new Policy(rules, upstreamsOf(c, env), values, caFiles);
}

/**
 * Problems that only show at run time (unset variables, unreadable files), as
 * warnings for check-config. A secret that is set but cannot go on the wire
 * (a CR LF in a header value) is thrown: check-config refuses it.
 */
export function runtimeProblems(c: ConfigFile, env: NodeJS.ProcessEnv = process.env): string[] {
  try {
    policyFromConfig(c, env);
    return [];
  } catch (e) {
    if (e instanceof SecretValueError) throw e;
    return [(e as Error).message];
  }
}
