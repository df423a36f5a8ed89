// Which process holds a socket, by its inode: /proc/PID/fd/* links read
// "socket:[INODE]". Only processes of the socket's uid are searched (the
// owner of /proc/PID is the process's uid), the ones found last first, since
// a program that opened one connection tends to open the next. Reading
// another user's fds takes root (or CAP_SYS_PTRACE): a data plane that dropped
// root asks its supervisor (see owner-resolver.ts).
import { readdir, readlink, readFile, stat } from 'node:fs/promises';

export interface ProcessInfo {
  pid: number;
  /** readlink /proc/PID/exe; absent when it cannot be read (a kernel thread, no permission). */
  exe?: string;
  /** /proc/PID/comm. */
  comm?: string;
}

export interface ProcSearchStats {
  searches: number;
  /** Processes whose fds were read, in all searches. */
  processesRead: number;
  found: number;
}

export class ProcSockets {
  /** The pids that held a found socket, newest last, a few per uid. */
  private readonly recent = new Map<number, number[]>();
  readonly stats: ProcSearchStats = { searches: 0, processesRead: 0, found: 0 };

  constructor(private readonly proc = '/proc') {}

  async find(inode: number, uid: number): Promise<ProcessInfo | null> {
    this.stats.searches++;
    const link = `socket:[${inode}]`;
    const tried = new Set<number>();
    for (const pid of [...(this.recent.get(uid) ?? [])].reverse()) {
      tried.add(pid);
      if (await this.holds(pid, link)) return this.found(pid, uid);
    }
    let pids: number[];
    try {
      pids = (await readdir(this.proc))
        .filter((n) => n.charCodeAt(0) <= 0x39)
        .map(Number)
        .filter((n) => n > 0);
    } catch {
      return null;
    }
    for (const pid of pids) {
      if (tried.has(pid)) continue;
      try {
        if ((await stat(`${this.proc}/${pid}`)).uid !== uid) continue;
      } catch {
        continue; // gone meanwhile
      }
      if (await this.holds(pid, link)) return this.found(pid, uid);
    }
    return null;
  }

  private async holds(pid: number, link: string): Promise<boolean> {
    this.stats.processesRead++;
    let fds: string[];
    try {
      fds = await readdir(`${this.proc}/${pid}/fd`);
    } catch {
      return false;
    }
    for (const fd of fds) {
      try {
        if ((await readlink(`${this.proc}/${pid}/fd/${fd}`)) === link) return true;
      } catch {
        // closed meanwhile
      }
    }
    return false;
  }

  private async found(pid: number, uid: number): Promise<ProcessInfo> {
    this.stats.found++;
    const list = (this.recent.get(uid) ?? []).filter((p) => p !== pid);
    list.push(pid);
    if (list.length > 8) list.shift();
    this.recent.set(uid, list);
    const info: ProcessInfo = { pid };
    try {
      info.exe = (await readlink(`${this.proc}/${pid}/exe`)).replace(/ \(deleted\)$/, '');
    } catch {
      // no permission, or a kernel thread
    }
    try {
      info.comm = (await readFile(`${this.proc}/${pid}/comm`, 'utf8')).trimEnd();
    } catch {
      // gone
    }
    return info;
  }
}
