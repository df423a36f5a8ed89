// `tunsteer doctor`: checks this machine (this network namespace: run it with
// `ip netns exec NS` to look at another) and prints one line per finding
// with what to do. Exit 0 all well, 1 warnings, 2 a blocker.
import { DEFAULT_STATE_DIR } from '../../config/defaults.js';
import { systemContext } from '../../doctor/context.js';
import { runDoctor } from '../../doctor/doctor.js';

export function doctor(o: { stateDir?: string; table?: number; rulePriority?: number }): number {
  const r = runDoctor(systemContext({ stateDir: o.stateDir ?? DEFAULT_STATE_DIR, table: o.table ?? 2022, rulePriority: o.rulePriority ?? 9000 }));
  process.stdout.write(r.text);
  return r.code;
}
