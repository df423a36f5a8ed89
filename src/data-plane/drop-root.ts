// Dropping root in the data plane. It needs root only to be handed the TUN
// and to bind its listeners; after that it reads and writes an fd it already
// holds and opens ordinary sockets. Who it becomes is the supervisor's choice
// (gateway/privileges.ts).
import { readFileSync } from 'node:fs';

export interface Identity {
  user: string;
  uid: number;
  gid: number;
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
