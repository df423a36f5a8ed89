// Route-all mode from the gateway's point of view: discover, plan, lock,
// check, apply; and the dry run. The steps themselves live in route-plan.ts,
// the bookkeeping in route-journal.ts, the undo in restore.ts. All
// synchronous: a handful of `ip` calls at start-up (see route-runner.ts).
import { ipExecInNetns, ipExecSync, procSysctl, type IpExecSync, type SysctlIo } from './ip-exec.js';
import { planRouteAll, renderPlan, type RoutePlanConfig, type Step } from './route-plan.js';
import { netnsAt, type JournaledStep, type RouteJournal } from './route-journal.js';
import { applySteps, preflight } from './route-runner.js';
import { acquireJournal, restoreFromJournal, type RestoreReport } from './restore.js';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { discoverUplink, discoverUplink6, type Uplink, type Uplink6 } from './uplink.js';

export interface RouteAllOptions extends RoutePlanConfig {
  stateDir: string;
  /** A dead gateway's journal in this namespace: undo it and go on (default), or refuse. */
  restoreStale?: boolean;
  /** Skip the check for rules at our priorities and routes in our table (default: check). */
  skipPreflight?: boolean;
  exec?: IpExecSync;
  sysctl?: SysctlIo;
  log?: (line: string) => void;
  /** Apply the plan inside the network namespace at this path (up --netns); this process stays outside. */
  netnsPath?: string;
}

export interface RouteAllHandle {
  uplink: Uplink;
  /** null: no IPv6 default route (::/0 still goes into the TUN; the gateway refuses IPv6 destinations). */
  uplink6: Uplink6 | null;
  steps: Step[];
  applied: JournaledStep[];
  journal: RouteJournal;
  /** Undo everything and release the state dir. Synchronous and idempotent. */
  restore(): RestoreReport;
}

/** Discovers the uplink and renders the plan; changes nothing, takes no lock. */
export function dryRunRouteAll(cfg: RoutePlanConfig, exec: IpExecSync = ipExecSync): { uplink: Uplink; uplink6: Uplink6 | null; steps: Step[]; lines: string[] } {
  const { uplink, uplink6, steps } = discoverAndPlan(cfg, exec);
  const head = `# uplink ${uplink.dev}${uplink.gateway ? ` via ${uplink.gateway}` : ''}, gateway sockets bind ${uplink.source}`;
  const head6 = !cfg.route6
    ? []
    : [
        uplink6
          ? `# IPv6 uplink ${uplink6.dev}${uplink6.gateway ? ` via ${uplink6.gateway}` : ''}, gateway sockets bind ${uplink6.source}`
          : '# no IPv6 uplink: ::/0 still into the TUN, IPv6 destinations refused',
      ];
  return { uplink, uplink6, steps, lines: [head, ...head6, ...renderPlan(steps)] };
}

/** True when this kernel has IPv6 at all (not booted with ipv6.disable=1): otherwise there is nothing to steer, nor to leak. */
export function kernelHasIpv6(): boolean {
  return existsSync('/proc/net/if_inet6');
}

/**
 * Whether a new link (our TUN) gets IPv6 in that namespace (this one, or the
 * one at netnsPath): net.ipv6.conf.default.disable_ipv6 is 0. Containers
 * often run with it 1 (Docker's default); the TUN then takes no IPv6 address
 * nor route, and route-all uses `prohibit default` for ::/0 instead.
 */
export function ipv6OnNewLinks(netnsPath?: string): boolean {
  const file = '/proc/sys/net/ipv6/conf/default/disable_ipv6';
  try {
    const text = netnsPath
      ? execFileSync('nsenter', [`--net=${netnsPath}`, 'cat', file], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] })
      : readFileSync(file, 'utf8');
    return text.trim() === '0';
  } catch {
    return false;
  }
}

function discoverAndPlan(cfg: RoutePlanConfig, exec: IpExecSync): { uplink: Uplink; uplink6: Uplink6 | null; steps: Step[] } {
  const uplink = discoverUplink(exec);
  const uplink6 = cfg.route6 ? discoverUplink6(exec) : null;
  return { uplink, uplink6, steps: planRouteAll(cfg, uplink, uplink6) };
}

/**
 * Puts route-all in place. Install exit handlers first
 * (`installExitHandlers(() => restoreFromJournal(stateDir, {ownOnly: true}))`)
 * so a signal at any point undoes exactly what the journal lists.
 */
export function upRouteAll(opts: RouteAllOptions): RouteAllHandle {
  const exec = opts.exec ?? (opts.netnsPath ? ipExecInNetns(opts.netnsPath) : ipExecSync);
  const sysctl = opts.sysctl ?? procSysctl;
  const { uplink, uplink6, steps } = discoverAndPlan(opts, exec);
  // sysctl keys under net. are per namespace, and /proc/sys is this process's
  if (opts.netnsPath && steps.some((st) => st.kind === 'sysctl')) throw new Error('--netns: a rp_filter setting cannot be applied in another namespace');
  const meta = { mode: 'route-all' as const, tunName: opts.tunName, table: opts.table, priorityBase: opts.priorityBase, uplink, ...(uplink6 ? { uplink6 } : {}) };
  const where = opts.netnsPath ? { netns: netnsAt(opts.netnsPath), netnsPath: opts.netnsPath } : {};
  const journal = acquireJournal(opts.stateDir, meta, { where, restoreStale: opts.restoreStale, restore: { sysctl, log: opts.log, ...(opts.exec ? { exec: opts.exec } : {}) } });
  let applied: JournaledStep[];
  try {
    if (!opts.skipPreflight) preflight(steps, opts.table, exec);
    applied = applySteps(steps, { journal, exec, sysctl });
  } catch (e) {
    // Rolled back (or never started): release the state dir. If the rollback
    // left something in place, the journal keeps listing it for `tunsteer down`.
    if (journal.data.steps.length === 0) journal.clear();
    throw e;
  }
  journal.markUp();
  return {
    uplink,
    uplink6,
    steps,
    applied,
    journal,
    restore: () => restoreFromJournal(opts.stateDir, { sysctl, log: opts.log, ...(opts.exec ? { exec: opts.exec } : {}) }),
  };
}
