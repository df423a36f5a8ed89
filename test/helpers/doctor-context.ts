// A staged DoctorContext: files, links, device kinds, `ip -j` answers and
// commands given as data, so each check is tested without this machine.
import type { CommandResult, DoctorContext } from '../../src/doctor/context.js';

export interface Stage {
  files?: Record<string, string>;
  links?: Record<string, string>;
  kinds?: Record<string, { exists: boolean; charDevice: boolean; readWrite: boolean }>;
  /** `ip -j` answers by their argument text, e.g. "-4 route show default". */
  ip?: Record<string, unknown[]>;
  commands?: Record<string, CommandResult>;
  isRoot?: boolean;
  stateDir?: string;
}

export function fakeContext(s: Stage = {}): DoctorContext {
  return {
    opts: { stateDir: s.stateDir ?? '/nonexistent/tunsteer-doctor-test', table: 2022, rulePriority: 9000 },
    read: (p) => s.files?.[p] ?? null,
    readlink: (p) => s.links?.[p] ?? null,
    kind: (p) => s.kinds?.[p] ?? { exists: false, charDevice: false, readWrite: false },
    ipJson: (args) => s.ip?.[args.join(' ')] ?? [],
    run: (cmd, args) => s.commands?.[[cmd, ...args].join(' ')] ?? { ok: true, stdout: '', stderr: '' },
    isRoot: s.isRoot ?? true,
  };
}
