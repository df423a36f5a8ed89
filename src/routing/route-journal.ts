// The routing journal: <state-dir>/routes.json, written BEFORE each step is
// applied (tmp file + fsync + rename, so a reader sees the old or the new
// journal, never half of one). It is also the lock: the file exists exactly
// while some gateway holds routing state in this state dir. Created with an
// exclusive link(2), so two gateways starting together cannot both win.
//
// A journal whose pid is dead (or reused: the process start time differs, or
// it is a zombie) is stale: its routes may still be in place, and `tunsteer
// down` (restore.ts) undoes them from here after kill -9.
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { FileStep, IpStep, NftStep, SysctlStep } from './route-plan.js';
import type { Uplink, Uplink6 } from './uplink.js';

export const JOURNAL_FILE = 'routes.json';
export const JOURNAL_VERSION = 1;

/** Which network namespace: nsfs inode and device of /proc/self/ns/net, and its `ip netns` name if it has one. */
export interface NetnsId {
  inode: number;
  dev: number;
  name?: string;
}

/** A step as journaled: sysctl steps carry the value found before they were applied. */
/** `old`: a sysctl's previous value, or a file's previous bytes in base64. */
export type JournaledStep = IpStep | NftStep | (SysctlStep & { old?: string }) | (FileStep & { old?: string });

export interface JournalMeta {
  mode: 'route-all' | 'per-host' | 'redirect' | 'tproxy';
  tunName: string;
  table?: number;
  priorityBase?: number;
  /** null: route-all runs with no IPv4 uplink now (it follows the network: see route-follow.ts). */
  uplink?: Uplink | null;
  uplink6?: Uplink6 | null;
}

export interface JournalData extends JournalMeta {
  version: number;
  pid: number;
  /** Start time of pid (clock ticks since boot, /proc/PID/stat field 22): tells a reused pid apart. */
  pidStart?: string;
  netns: NetnsId;
  createdAt: string;
  updatedAt: string;
  /** Steps applied so far, plus (when applied < steps.length) the one being applied. */
  steps: JournaledStep[];
  /** How many of steps are known to be complete. */
  applied: number;
  /** Set once every step is in place. */
  upAt?: string;
  /** The steps were applied in another namespace than the gateway's (up --netns): where to enter it again. */
  netnsPath?: string;
}

export class JournalLockedError extends Error {
  override name = 'JournalLockedError';
  constructor(
    readonly journal: JournalData,
    readonly path: string,
  ) {
    super(
      `state dir ${dirOf(path)} is in use by tunsteer pid ${journal.pid} ` +
        `(${describeNetns(journal.netns)}, since ${journal.createdAt}); stop that gateway first, ` +
        'or give this one its own --state-dir',
    );
  }
}

export class StaleJournalError extends Error {
  override name = 'StaleJournalError';
  constructor(
    readonly journal: JournalData,
    readonly path: string,
  ) {
    super(
      `tunsteer pid ${journal.pid} (${describeNetns(journal.netns)}) died without restoring its routing ` +
        `(${journal.steps.length} step(s) in ${path}); run \`tunsteer down --state-dir ${dirOf(path)}\` ` +
        'in that network namespace first',
    );
  }
}

export class JournalCorruptError extends Error {
  override name = 'JournalCorruptError';
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

export function describeNetns(n: NetnsId): string {
  return `network namespace ${n.name ? `"${n.name}" ` : ''}inode ${n.inode}`;
}

export function journalPath(stateDir: string): string {
  return join(stateDir, JOURNAL_FILE);
}

/**
 * This process's network namespace. The name is found the way `ip netns
 * identify` does: the /run/netns entry bind-mounted from the same nsfs inode.
 */
export function currentNetns(netnsDir = '/run/netns'): NetnsId {
  return netnsAt('/proc/self/ns/net', netnsDir);
}

/** The namespace a path refers to (/run/netns/NAME, /proc/PID/ns/net), named as currentNetns does. Throws if there is none. */
export function netnsAt(path: string, netnsDir = '/run/netns'): NetnsId {
  const st = statSync(path);
  const id: NetnsId = { inode: st.ino, dev: st.dev };
  let names: string[];
  try {
    names = readdirSync(netnsDir);
  } catch {
    return id;
  }
  for (const n of names) {
    try {
      const s = statSync(join(netnsDir, n));
      if (s.ino === st.ino && s.dev === st.dev) return { ...id, name: n };
    } catch {
      // a namespace being deleted, or a bind mount not yet in place
    }
  }
  return id;
}

export function sameNetns(a: NetnsId, b: NetnsId): boolean {
  return a.inode === b.inode && a.dev === b.dev;
}

/** Field 22 (starttime) of /proc/PID/stat, and whether the process is a zombie; null if there is no such process. */
function procStat(pid: number): { start: string; zombie: boolean } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { zombie: f[0] === 'Z' || f[0] === 'X', start: f[19] };
  } catch {
    return null;
  }
}

export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.start;
}

/** Is the journal's owner still running (the same process, not a reuse of its pid)? */
export function ownerAlive(j: Pick<JournalData, 'pid' | 'pidStart'>): boolean {
  if (!Number.isInteger(j.pid) || j.pid <= 0) return false;
  try {
    process.kill(j.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const st = procStat(j.pid);
  if (!st) return true; // kill(0) says it exists; no /proc to say more (hidepid): believe it
  if (st.zombie) return false;
  return j.pidStart === undefined || st.start === j.pidStart;
}

/** The journal in stateDir, or null if there is none. Throws JournalCorruptError when it cannot be read as one. */
export function readJournal(stateDir: string): JournalData | null {
  const path = journalPath(stateDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let j: JournalData;
  try {
    j = JSON.parse(text) as JournalData;
  } catch (e) {
    throw new JournalCorruptError(`${path} is not valid JSON (${(e as Error).message}); inspect it and \`ip rule\`, then remove it`);
  }
  if (typeof j !== 'object' || j === null || j.version !== JOURNAL_VERSION || typeof j.pid !== 'number' || !Array.isArray(j.steps) || typeof j.netns?.inode !== 'number') {
    throw new JournalCorruptError(`${path} is not a tunsteer routing journal (version ${JOURNAL_VERSION}); inspect it and \`ip rule\`, then remove it`);
  }
  return j;
}

let tmpCounter = 0;

function writeTmp(path: string, data: JournalData): string {
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(data, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

export interface AcquireOptions {
  netns?: NetnsId;
  /** Entered by path to apply the steps (up --netns); recorded so `down` can enter it too. */
  netnsPath?: string;
  pid?: number;
}

/**
 * The journal of one state dir. `new RouteJournal(dir)` only names it;
 * begin() takes the lock (RouteJournal.acquire does both). Then record() before
 * each step, markUp() once all are in place, clear() after restoring.
 */
export class RouteJournal {
  readonly path: string;
  private current: JournalData | null = null;

  constructor(
    readonly stateDir: string,
    private readonly opts: AcquireOptions = {},
  ) {
    this.path = journalPath(stateDir);
  }

  /** new + begin: the held journal, or JournalLockedError / StaleJournalError. */
  static acquire(stateDir: string, meta: JournalMeta, opts: AcquireOptions = {}): RouteJournal {
    const j = new RouteJournal(stateDir, opts);
    j.begin(meta);
    return j;
  }

  /** pid of the live gateway holding this state dir, or null (none, or a dead one: see exists()). */
  holder(): number | null {
    const j = readJournal(this.stateDir);
    return j && ownerAlive(j) ? j.pid : null;
  }

  /** A journal file is there (held by a live gateway, or left by a dead one). */
  exists(): boolean {
    return existsSync(this.path);
  }

  /**
   * Takes the state dir. Throws JournalLockedError if a live gateway holds it,
   * StaleJournalError if a dead one left steps behind (restore them first),
   * and takes over silently from a dead one that left nothing applied.
   */
  begin(meta: JournalMeta): void {
    if (this.current) throw new Error(`${this.path}: begin() twice`);
    mkdirSync(this.stateDir, { recursive: true, mode: 0o755 });
    const path = this.path;
    const pid = this.opts.pid ?? process.pid;
    const now = new Date().toISOString();
    const data: JournalData = {
      version: JOURNAL_VERSION,
      pid,
      pidStart: processStartTime(pid),
      netns: this.opts.netns ?? currentNetns(),
      ...(this.opts.netnsPath ? { netnsPath: this.opts.netnsPath } : {}),
      ...meta,
      createdAt: now,
      updatedAt: now,
      steps: [],
      applied: 0,
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      const tmp = writeTmp(path, data);
      try {
        linkSync(tmp, path); // atomic create-if-absent with the full content in place
        this.current = data;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        unlinkQuiet(tmp);
      }
      let ino: number;
      try {
        ino = statSync(path).ino;
      } catch {
        continue; // released between our link and stat: try again
      }
      const other = readJournal(this.stateDir);
      if (!other) continue;
      if (other.pid === pid && other.pidStart === data.pidStart) {
        throw new JournalLockedError(other, path); // this process already holds it
      }
      if (ownerAlive(other)) throw new JournalLockedError(other, path);
      if (other.steps.length > 0) throw new StaleJournalError(other, path);
      // Dead owner, nothing applied: remove it, unless someone replaced it meanwhile.
      try {
        if (statSync(path).ino === ino) unlinkSync(path);
      } catch {
        // gone already
      }
    }
    throw new Error(`could not take ${path}: it keeps changing (another gateway starting?)`);
  }

  private held(): JournalData {
    if (!this.current) throw new Error(`${this.path}: not begun (call begin() first)`);
    return this.current;
  }

  get data(): Readonly<JournalData> {
    return this.held();
  }

  /** Replaces the journal atomically: steps applied so far (plus one in flight when applied < steps.length). */
  record(steps: readonly JournaledStep[], applied: number = steps.length): void {
    this.write({ ...this.held(), steps: steps.map((s) => ({ ...s })), applied });
  }

  /** The uplinks changed (route-all follows the network): for `tunsteer status`. */
  setUplinks(uplink: Uplink | null, uplink6: Uplink6 | null): void {
    this.write({ ...this.held(), uplink, uplink6 });
  }

  /** Every step is in place and the gateway serves: for `tunsteer status`. */
  markUp(): void {
    this.write({ ...this.held(), upAt: new Date().toISOString() });
  }

  private write(next: JournalData): void {
    next.updatedAt = new Date().toISOString();
    const tmp = writeTmp(this.path, next);
    try {
      renameSync(tmp, this.path);
    } catch (e) {
      unlinkQuiet(tmp);
      throw e;
    }
    this.current = next;
  }

  read(): JournalData | null {
    return readJournal(this.stateDir);
  }

  /** Removes the journal, and with it the lock, if it is still ours. Only once nothing it lists is in place. */
  clear(): void {
    const mine = this.current;
    if (!mine) return;
    const j = safeRead(this.stateDir);
    if (j && (j.pid !== mine.pid || j.pidStart !== mine.pidStart)) return; // not ours any more
    unlinkQuiet(this.path);
  }
}

function safeRead(stateDir: string): JournalData | null {
  try {
    return readJournal(stateDir);
  } catch {
    return null;
  }
}

/** Replaces stateDir's journal atomically (tmp + fsync + rename) with data, whoever owns it; for restore.ts. */
export function replaceJournal(stateDir: string, data: JournalData): void {
  const path = journalPath(stateDir);
  const tmp = writeTmp(path, { ...data, updatedAt: new Date().toISOString() });
  try {
    renameSync(tmp, path);
  } catch (e) {
    unlinkQuiet(tmp);
    throw e;
  }
}

/** Removes a journal whatever its owner; restore.ts calls it once every step is undone. */
export function removeJournal(stateDir: string): void {
  unlinkQuiet(journalPath(stateDir));
}
