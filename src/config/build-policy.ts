// From a validated config to the proxy core's Policy, in two steps:
//  1. readPolicySecrets: upstream passwords, header values and CA files read
//     from where the config points (environment or file), refused when they
//     cannot go on the wire. The supervisor does this, at start and at each
//     reload: it owns the files (root), and every problem is named at once.
//  2. buildPolicy: the rules compiled with those values. Plain data in, so the
//     data plane (a child without root) builds it from one IPC message.
import { readFileSync } from 'node:fs';
import type { ConfigFile } from './schema.js';
import { SecretValueError, readSecret, rulesOf, upstreamModels, upstreamsOf } from './config-models.js';
import { ConfigError } from './config-error.js';
import { Policy } from '../proxy/policy.js';
import { RuleSetFileError, ruleSetsOf } from './rule-set-files.js';
import type { RuleSets } from '../proxy/rules/rule-types.js';

/** What the rules and upstreams name, read: plain data (it crosses to the data plane in one IPC message). */
export interface PolicySecrets {
  /** A set-header rule's value, by the rule's index. */
  headerValues: Record<number, string>;
  /** An upstream's password, by its name. */
  passwords: Record<string, string>;
  /** An upstream_tls CA file's PEM text, by its path. */
  caFiles: Record<string, string>;
}

/** The part of the config file a policy is made of, and the secrets it names: what the data plane gets. */
export interface PolicyData {
  rules?: ConfigFile['rules'];
  upstreams?: ConfigFile['upstreams'];
  rule_sets?: ConfigFile['rule_sets'];
  secrets: PolicySecrets;
}

/**
 * Reads every secret the config names. All problems are collected, one line
 * each naming its field; a value that cannot go on the wire (a CR LF) makes
 * the whole a SecretValueError, which check-config refuses rather than warns.
 */
export function readPolicySecrets(c: Pick<ConfigFile, 'rules' | 'upstreams'>, env: NodeJS.ProcessEnv = process.env): PolicySecrets {
  const out: PolicySecrets = { headerValues: {}, passwords: {}, caFiles: {} };
  const problems: ConfigError[] = [];
  const attempt = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(e);
    }
  };
  for (const r of rulesOf(c)) {
    if (r.action.type !== 'set-header') continue;
    const value = r.action.value;
    const field = 'env' in value ? 'value_env' : 'value_file';
    attempt(() => (out.headerValues[r.index] = readSecret(`rules[${r.index}].${field}`, value, env)));
    const ca = r.action.upstreamTls?.caFile;
    if (ca !== undefined && !(ca in out.caFiles)) {
      attempt(() => {
        try {
          out.caFiles[ca] = readFileSync(ca, 'utf8');
        } catch (e) {
          throw new ConfigError(`rules[${r.index}].upstream_tls.ca_file: cannot read ${ca}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
        }
      });
    }
  }
  for (const name of Object.keys(c.upstreams ?? {})) {
    attempt(() => {
      const password = upstreamsOf({ upstreams: { [name]: c.upstreams![name] } }, env).get(name)?.password;
      if (password !== undefined) out.passwords[name] = password;
    });
  }
  if (problems.length === 1) throw problems[0];
  if (problems.length > 1) {
    const Kind = problems.some((p) => p instanceof SecretValueError) ? SecretValueError : ConfigError;
    throw new Kind(problems.map((p) => p.message).join('\n'));
  }
  return out;
}

/**
 * The compiled policy, from the config's rules and upstreams and the secrets
 * already read. The rule-sets' files are read here (ruleSetsOf), unless the
 * sets are given: a reload hands over the running ones whose file did not change.
 */
export function buildPolicy(p: PolicyData, ruleSets: RuleSets = ruleSetsOf(p)): Policy {
  const values = new Map(Object.entries(p.secrets.headerValues).map(([i, v]) => [Number(i), v]));
  return new Policy(rulesOf(p), upstreamModels(p, p.secrets.passwords), values, new Map(Object.entries(p.secrets.caFiles)), ruleSets);
}

/** Both steps at once, for a process that reads its own secrets (tunsteer proxy, check-config). */
export function policyFromConfig(c: ConfigFile, env: NodeJS.ProcessEnv = process.env): Policy {
  return buildPolicy({ rules: c.rules, upstreams: c.upstreams, ...(c.rule_sets ? { rule_sets: c.rule_sets } : {}), secrets: readPolicySecrets(c, env) });
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
    if (e instanceof SecretValueError || e instanceof RuleSetFileError) throw e;
    return (e as Error).message.split('\n');
  }
}
