// What doctor's checks look at, behind one interface so unit tests stage it:
// files, `ip -j` answers and other commands, all of the network and mount
// namespaces doctor runs in (`ip netns exec NS tunsteer doctor` looks at NS
// and NS's /etc/resolv.conf; the e2e test stages files with mounts in a
// mount namespace of its own). /proc/sys/net is always the real /proc's: it
// belongs to the network namespace, whatever the root.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface DoctorOptions {
  stateDir: string;
  /** The routing table and first rule priority a gateway would use (up's --table, --rule-priority). */
  table: number;
  rulePriority: number;
}

export interface CommandResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** The program is not installed (ENOENT). */
  missing?: boolean;
}

export interface DoctorContext {
  opts: DoctorOptions;
  /** The file's text, or null when it cannot be read. */
  read(path: string): string | null;
  /** The link's target when `path` is a symbolic link, else null. */
  readlink(path: string): string | null;
  /** What `path` is: missing, a character device, or another kind of file; and whether this process may read and write it. */
  kind(path: string): { exists: boolean; charDevice: boolean; readWrite: boolean };
  /** `ip -j ARGS`, parsed; [] when it fails. */
  ipJson(args: string[]): unknown[];
  run(cmd: string, args: string[]): CommandResult;
  isRoot: boolean;
}

export function systemContext(opts: DoctorOptions, root = '/'): DoctorContext {
  const at = (p: string) => (p.startsWith('/proc/sys/net/') ? p : join(root, p));
  const run = (cmd: string, args: string[]): CommandResult => {
    try {
      const stdout = execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
      return { ok: true, stdout, stderr: '' };
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
      return { ok: false, stdout: err.stdout ?? '', stderr: err.stderr ?? err.message, ...(err.code === 'ENOENT' ? { missing: true } : {}) };
    }
  };
  return {
    opts,
    isRoot: process.getuid?.() === 0,
    read(p) {
      try {
        return readFileSync(at(p), 'utf8');
      } catch {
        return null;
      }
    },
    readlink(p) {
      try {
        return lstatSync(at(p)).isSymbolicLink() ? readlinkSync(at(p)) : null;
      } catch {
        return null;
      }
    },
    kind(p) {
      try {
        const s = statSync(at(p));
        let readWrite = true;
        try {
          accessSync(at(p), constants.R_OK | constants.W_OK);
        } catch {
          readWrite = false;
        }
        return { exists: true, charDevice: s.isCharacterDevice(), readWrite };
      } catch {
        return { exists: false, charDevice: false, readWrite: false };
      }
    },
    ipJson(args) {
      const r = run('ip', ['-j', ...args]);
      if (!r.ok) return [];
      try {
        const v: unknown = JSON.parse(r.stdout || '[]');
        return Array.isArray(v) ? v : [];
      } catch {
        return [];
      }
    },
    run,
  };
}
