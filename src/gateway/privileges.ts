// Dropping root in the data plane: who to become, and becoming it. The data
// plane needs root only to be handed the TUN and to bind its listeners; after
// that it reads and writes an fd it already holds and opens ordinary sockets.
import { readFileSync } from 'node:fs';

export interface Identity {
  user: string;
  uid: number;
  gid: number;
}

/** "NAME", "UID" or "UID:GID", looked up in /etc/passwd where a name is given. */
export function resolveUser(spec: string, passwd = readPasswd()): Identity {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(spec);
  if (numeric) {
    const uid = Number(numeric[1]);
    const row = passwd.find((r) => r.uid === uid);
    return { user: row?.user ?? spec, uid, gid: numeric[2] !== undefined ? Number(numeric[2]) : (row?.gid ?? uid) };
  }
  const row = passwd.find((r) => r.user === spec);
  if (!row) throw new Error(`--user: no user "${spec}" in /etc/passwd`);
  return row;
}

function readPasswd(): Identity[] {
  let text = '';
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return [];
  }
  const out: Identity[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 4 && /^\d+$/.test(f[2]) && /^\d+$/.test(f[3])) out.push({ user: f[0], uid: Number(f[2]), gid: Number(f[3]) });
  }
  return out;
}

/** Supplementary groups first, then the group, then the user: afterwards no way back and no capabilities left. */
export function dropTo(id: Identity): void {
  if (process.getuid?.() !== 0) return;
  if (id.uid === 0) return;
  process.setgroups!([id.gid]);
  process.setgid!(id.gid);
  process.setuid!(id.uid);
}

/** What the process runs as now, for the startup report. */
export function currentIdentity(): { uid: number; gid: number; groups: number[]; capEff: string } {
  let capEff = 'unknown';
  try {
    capEff = /^CapEff:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    // no /proc: leave it unknown
  }
  return { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1, groups: process.getgroups?.() ?? [], capEff };
}
