// A state dir left by a gateway that died (kill -9, a crash, power): its
// routes, rules and resolver override may still be in place, so the network
// stays dead. `tunsteer down` undoes them from the journal.
import { ownerAlive, readJournal } from '../../routing/route-journal.js';
import type { DoctorContext } from '../context.js';
import type { Finding } from '../finding.js';

export function checkStaleState(ctx: DoctorContext): Finding[] {
  const dir = ctx.opts.stateDir;
  let j;
  try {
    j = readJournal(dir);
  } catch (e) {
    return [{ level: 'warn', check: 'state', what: `the journal in ${dir} cannot be read: ${(e as Error).message}`, todo: `look at it, then remove ${dir} if no gateway runs` }];
  }
  if (j === null) return [];
  if (ownerAlive(j))
    return [{ level: 'info', check: 'state', what: `a gateway runs (pid ${j.pid}, ${j.mode}, state dir ${dir})`, todo: "its rules and routes are tunsteer's own" }];
  return [
    {
      level: 'warn',
      check: 'state',
      what: `gateway pid ${j.pid} (${j.mode}) died and left its state in ${dir}; its routes and DNS override may still be in place`,
      todo: `run tunsteer down --state-dir ${dir}`,
    },
  ];
}
