// `tunsteer down`: restores what a dead gateway left behind; exit 0 also when there is nothing to restore.
import { DEFAULT_STATE_DIR } from '../../config/defaults.js';
import { restoreLeftovers } from '../../gateway/down.js';

export function down(stateDir = DEFAULT_STATE_DIR): number {
  try {
    const r = restoreLeftovers(stateDir, (l) => process.stderr.write(`${l}\n`));
    process.stdout.write(r.found ? `restored what gateway pid ${r.pid} left: ${r.undone} undone, ${r.alreadyGone} already gone\n` : `nothing to restore in ${stateDir}\n`);
    return 0;
  } catch (e) {
    process.stderr.write(`tunsteer: ${(e as Error).message}\n`);
    return 1;
  }
}
