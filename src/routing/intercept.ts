// Redirect and tproxy modes from the gateway's point of view: lock the state
// dir, check that our nftables table is not taken, apply the plan journalled,
// mark up. `tunsteer down` undoes it like any other journal.
import { nftExecSync } from './ip-exec.js';
import { NFT_TABLE, planIntercept, type InterceptPlanConfig } from './intercept-plan.js';
import { applySteps } from './route-runner.js';
import { acquireJournal } from './restore.js';
import type { Step } from './route-plan.js';

export interface InterceptOptions extends InterceptPlanConfig {
  stateDir: string;
  log?: (line: string) => void;
}

export function upIntercept(opts: InterceptOptions): { steps: Step[] } {
  const steps = planIntercept(opts);
  const meta = { mode: opts.kind, tunName: '' };
  const journal = acquireJournal(opts.stateDir, meta, { restore: { log: opts.log } });
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
