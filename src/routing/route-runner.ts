// Applies a plan in order: journal first, then the step. On a failure it takes
// back what it applied (reverse order) and throws an error that names the
// failed command and what `ip` said.
//
// Synchronous on purpose (execFileSync, argv, no shell): a plan is 4 to 10
// `ip` calls, ~1 ms each (docs/DECISIONS.md), and a signal can then never land
// while a step is half-way between journal and kernel: the exit handlers run
// between JS turns, i.e. between steps, and undo exactly what is journaled.
import { readFileSync, writeFileSync } from 'node:fs';
import { formatArgv, IpCommandError, ipExecSync, isAlreadyGone, nftExecSync, procSysctl, type IpExecSync, type SysctlIo } from './ip-exec.js';
import { planPriorities, RoutePlanError, type Step } from './route-plan.js';
import type { JournaledStep } from './route-journal.js';

/** Where the runner records progress; RouteJournal implements it, tests record calls. */
export interface StepRecorder {
  record(steps: readonly JournaledStep[], applied: number): void;
}

export class RouteApplyError extends Error {
  override name = 'RouteApplyError';
  constructor(
    /** The step that failed. */
    readonly step: Step,
    /** The failed command as text: `ip -4 rule add ...` or `sysctl -w k=v`. */
    readonly command: string,
    readonly stderr: string,
    readonly failure: unknown,
    /** Undos that failed during rollback; these changes are still in place (and in the journal). */
    readonly rollbackFailures: { command: string; error: string }[],
  ) {
    const rb = rollbackFailures.length
      ? `; rollback left ${rollbackFailures.length} change(s) in place: ${rollbackFailures.map((f) => `${f.command}: ${f.error}`).join('; ')}`
      : '; everything applied before it was undone';
    super(`routing step "${step.desc}" failed: \`${command}\`: ${stderr.trim() || String(failure)}${rb}`);
  }
}

export interface RunnerOptions {
  journal: StepRecorder;
  exec?: IpExecSync;
  sysctl?: SysctlIo;
}

export function doCommand(s: JournaledStep): string {
  if (s.kind === 'file') return `write ${s.path}`;
  if (s.kind === 'nft') return `nft -f - <<< ${JSON.stringify(s.script.split('\n')[0])}...`;
  return s.kind === 'ip' ? formatArgv(s.do) : `sysctl -w ${s.key}=${s.value}`;
}

export function undoCommand(s: JournaledStep): string {
  if (s.kind === 'file') return `write back the original ${s.path}`;
  if (s.kind === 'nft') return formatArgv(s.undo, 'nft');
  return s.kind === 'ip' ? formatArgv(s.undo) : `sysctl -w ${s.key}=${s.old ?? '?'}`;
}

/** Writes in place: truncate and write keeps the inode, so a bind mount stays intact (rename would not). */
function writeInPlace(path: string, bytes: Buffer | string): void {
  writeFileSync(path, bytes);
}

/** Runs one step's undo; 'gone' when there was nothing left to undo. Throws on any other failure. */
export function undoStep(s: JournaledStep, exec: IpExecSync, sysctl: SysctlIo): 'undone' | 'gone' {
  try {
    if (s.kind === 'ip') exec(s.undo);
    else if (s.kind === 'nft') nftExecSync(s.undo);
    else if (s.old === undefined)
      return 'gone'; // never read, so never written
    else if (s.kind === 'sysctl') sysctl.write(s.key, s.old);
    else writeInPlace(s.path, Buffer.from(s.old, 'base64'));
    return 'undone';
  } catch (e) {
    if (isAlreadyGone(e)) return 'gone';
    throw e;
  }
}

/**
 * Applies steps in order, each journaled before it runs. Returns the journaled
 * steps (sysctls with their previous value). On failure: rolls back, records
 * what is still in place (nothing, normally), throws RouteApplyError.
 */
export function applySteps(steps: readonly Step[], journalOrOpts: StepRecorder | RunnerOptions): JournaledStep[] {
  const opts: RunnerOptions = 'record' in journalOrOpts ? { journal: journalOrOpts } : journalOrOpts;
  const exec = opts.exec ?? ipExecSync;
  const sysctl = opts.sysctl ?? procSysctl;
  const done: JournaledStep[] = [];
  for (const step of steps) {
    let js: JournaledStep = step;
    try {
      if (step.kind === 'sysctl') js = { ...step, old: sysctl.read(step.key) };
      if (step.kind === 'file') js = { ...step, old: readFileSync(step.path).toString('base64') };
      opts.journal.record([...done, js], done.length);
      if (js.kind === 'ip') exec(js.do);
      else if (js.kind === 'nft') nftExecSync(['-f', '-'], js.script);
      else if (js.kind === 'sysctl') sysctl.write(js.key, js.value);
      else writeInPlace(js.path, js.content);
    } catch (e) {
      const stderr = e instanceof IpCommandError ? e.stderr : e instanceof Error ? e.message : String(e);
      const failures: { command: string; error: string }[] = [];
      const left: JournaledStep[] = [];
      for (const d of [...done].reverse()) {
        try {
          undoStep(d, exec, sysctl);
        } catch (ue) {
          failures.push({ command: undoCommand(d), error: ue instanceof IpCommandError ? ue.stderr.trim() : String(ue) });
          left.unshift(d);
        }
      }
      try {
        opts.journal.record(left, left.length);
      } catch {
        // the journal still lists more than is in place; restore tolerates that
      }
      throw new RouteApplyError(step, doCommand(js), stderr, e, failures);
    }
    done.push(js);
  }
  opts.journal.record(done, done.length);
  return done;
}

/**
 * Things that would make the plan wrong or make its undo hit someone else's
 * state: rules already at our priorities, routes already in our table. Pure.
 */
export function findConflicts(
  steps: readonly Step[],
  table: number,
  rulesJson: string,
  tableRoutesJson: string,
  /** Check this family's rules only (the JSON is that family's `ip -j rule show`); default: every rule of the plan. */
  family?: '-4' | '-6',
): string[] {
  const ours = new Set(planPriorities(steps, family));
  const v6 = family === '-6' ? 'IPv6 ' : '';
  const rules = JSON.parse(rulesJson || '[]') as { priority?: number; table?: string }[];
  const out: string[] = [];
  for (const r of rules) {
    if (r.priority !== undefined && ours.has(r.priority)) {
      out.push(`${v6}policy rule priority ${r.priority} is taken (lookup ${r.table ?? '?'})`);
    }
  }
  const routes = JSON.parse(tableRoutesJson || '[]') as { dst?: string; dev?: string }[];
  if (routes.length) {
    out.push(`${v6}routing table ${table} is not empty (${routes.map((r) => `${r.dst ?? '?'}${r.dev ? ` dev ${r.dev}` : ''}`).join(', ')})`);
  }
  return out;
}

/** Reads the rules and our table (read-only); throws RoutePlanError listing every conflict. */
export function preflight(steps: readonly Step[], table: number, exec: IpExecSync = ipExecSync): void {
  const conflicts: string[] = [];
  const families = steps.some((s) => s.kind === 'ip' && s.do[0] === '-6') ? (['-4', '-6'] as const) : (['-4'] as const);
  for (const f of families) {
    const rules = exec(['-j', f, 'rule', 'show']);
    let routes = '[]';
    try {
      routes = exec(['-j', f, 'route', 'show', 'table', String(table)]).stdout;
    } catch (e) {
      // A table nobody has used yet does not exist until its first route: that is the good case.
      if (!(e instanceof IpCommandError && /table does not exist/i.test(e.stderr))) throw e;
    }
    conflicts.push(...findConflicts(steps, table, rules.stdout, routes, families.length > 1 ? f : undefined));
  }
  if (conflicts.length) {
    throw new RoutePlanError(
      `routing state is in the way: ${conflicts.join('; ')}. Another tool (or a dead tunsteer: \`tunsteer down\`) uses them; ` + 'pick another --table / --rule-priority',
    );
  }
}
