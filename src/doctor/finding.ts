// What `tunsteer doctor` reports: one finding per line, each with what to do.
// info: worth knowing, nothing to do (exit 0); warn: something may go wrong
// (exit 1); block: the gateway cannot work this way (exit 2). No finding at
// all: nothing printed, exit 0.

export type Level = 'info' | 'warn' | 'block';

export interface Finding {
  level: Level;
  /** The check's name, e.g. resolv-conf. */
  check: string;
  /** What was found. */
  what: string;
  /** What to do about it (for info: what tunsteer does about it). */
  todo: string;
}

export function formatFinding(f: Finding): string {
  return `${f.level.padEnd(5)} ${f.check}: ${f.what}; ${f.todo}`;
}

/** 0 all well (info only), 1 warnings, 2 a blocker. */
export function exitCodeOf(findings: readonly Finding[]): number {
  if (findings.some((f) => f.level === 'block')) return 2;
  return findings.some((f) => f.level === 'warn') ? 1 : 0;
}
