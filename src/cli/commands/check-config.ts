// `tunsteer check-config FILE`: names every bad field and exits 2, or says
// what the file holds; problems only a start would meet (an unset variable) are warnings.
import { runtimeProblems } from '../../config/build-policy.js';
import { readConfig } from '../../config/load-config.js';
import { ConfigError } from '../../config/config-error.js';

export function checkConfig(file: string): number {
  try {
    const c = readConfig(file);
    for (const w of runtimeProblems(c)) process.stderr.write(`${file}: warning: ${w}\n`);
    process.stdout.write(`${file}: ok (${c.rules?.length ?? 0} rules, ${Object.keys(c.upstreams ?? {}).length} upstreams)\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return 2;
  }
}
