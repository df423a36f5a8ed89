// Redirect and tproxy modes from the gateway's point of view: lock the state
// dir, check that our nftables table is not taken, apply the plan journalled,
// mark up. `tunsteer down` undoes it like any other journal.
import { nftExecSync } from './ip-exec.js';
import { NFT_TABLE, planIntercept, type InterceptPlanConfig } from './intercept-plan.js';
import { currentNetns, RouteJournal, sameNetns, StaleJournalError } from './route-journal.js';
import { applySteps } from './route-runner.js';
import { restoreFromJournal } from './restore.js';
import type { Step } from './route-plan.js';

export interface InterceptOptions extends InterceptPlanConfig {
  stateDir: string;
  log?: (line: string) => void;
}

export function upIntercept(opts: InterceptOptions): { steps: Step[] } {
  const steps = planIntercept(opts);
  const meta = { mode: opts.kind, tunName: '' };
  let journal: RouteJournal;
  try {
    journal = RouteJournal.acquire(opts.stateDir, meta);
  } catch (e) {
    if (!(e instanceof StaleJournalError) || !sameNetns(e.journal.netns, currentNetns())) throw e;
    opts.log?.(`undoing what dead tunsteer pid ${e.journal.pid} left in place`);
    restoreFromJournal(opts.stateDir, { log: opts.log });
    journal = RouteJournal.acquire(opts.stateDir, meta);
  }
  try {
    if (tableExists()) throw new Error(`nftables table inet ${NFT_TABLE} exists already: another gateway, or a dead one (\`tunsteer down\`)`);
    applySteps(steps, { journal });
  } catch (e) {
    if (journal.data.steps.length === 0) journal.clear();
    throw e;
  }
  journal.markUp();
  return { steps };
}

function tableExists(): boolean {
  try {
    nftExecSync(['list', 'table', 'inet', NFT_TABLE]);
    return true;
  } catch {
    return false;
  }
}
