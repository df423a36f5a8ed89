// From a validated config to the proxy core's Policy: rules compiled, upstream
// passwords and header values read from where the config points (environment
// or file), once at startup.
import type { ConfigFile } from './schema.js';
import { readSecret, rulesOf, upstreamsOf } from './load-config.js';
import { Policy } from '../proxy/policy.js';

export function policyFromConfig(c: ConfigFile, env: NodeJS.ProcessEnv = process.env): Policy {
  const rules = rulesOf(c);
  const values = new Map<number, string>();
  for (const r of rules) {
    if (r.action.type !== 'set-header') continue;
    const field = 'env' in r.action.value ? 'value_env' : 'value_file';
    values.set(r.index, readSecret(`rules[${r.index}].${field}`, r.action.value, env));
  }
  return new Policy(rules, upstreamsOf(c, env), values);
}

/** Problems that only show at run time (unset variables, unreadable files), as warnings for check-config. */
export function runtimeProblems(c: ConfigFile, env: NodeJS.ProcessEnv = process.env): string[] {
  try {
    policyFromConfig(c, env);
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}
