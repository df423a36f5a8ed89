// The control API's bearer secret, read by the supervisor from where the
// config points (an environment variable or a file; one trailing newline of
// a file trimmed), never from the config text. It must be something a
// dashboard can send in a header: no controls, not empty.
import { readSecret } from './config-models.js';
import type { ControlSettings } from './settings.js';

export function readControlSecret(c: ControlSettings | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!c?.secret) return undefined;
  const where = 'env' in c.secret ? 'control.secret_env' : 'control.secret_file';
  return readSecret(where, c.secret, env, (v) => (v.length === 0 ? 'is empty' : /[\s\p{Cc}]/u.test(v) ? 'holds a space or a control character (a bearer token cannot)' : null));
}
