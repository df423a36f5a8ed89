// `tunsteer check-config FILE`: names every bad field and exits 2, or says
// what the file holds; problems only a start would meet (an unset variable) are warnings.
import { runtimeProblems } from '../../config/build-policy.js';
import { readConfig } from '../../config/load-config.js';
import { ConfigError } from '../../config/config-error.js';
import { readControlSecret } from '../../config/control-secret.js';
import type { ConfigFile } from '../../config/schema.js';

export function checkConfig(file: string, env: NodeJS.ProcessEnv = process.env): number {
  try {
    const c = readConfig(file);
    for (const w of [...runtimeProblems(c, env), ...controlSecretProblems(c, env)]) process.stderr.write(`${file}: warning: ${w}\n`);
    process.stdout.write(`${file}: ok (${c.rules?.length ?? 0} rules, ${Object.keys(c.upstreams ?? {}).length} upstreams)\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
}

/** The control API's secret as `up` would read it: unset, unreadable or unfit for a header (never its value). */
function controlSecretProblems(c: ConfigFile, env: NodeJS.ProcessEnv): string[] {
  const ctl = c.control;
  if (typeof ctl !== 'object') return [];
  const secret = ctl.secret_env !== undefined ? { env: ctl.secret_env } : ctl.secret_file !== undefined ? { file: ctl.secret_file } : undefined;
  if (!secret) return [];
  try {
    readControlSecret({ host: '', port: 0, secret }, env);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [e.message];
    throw e;
  }
}
