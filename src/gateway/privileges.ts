// Who the data plane becomes once it no longer needs root: --user, else
// nobody where there is one. The data plane drops to it itself
// (data-plane/drop-root.ts).
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/config-error.js';
import type { GatewaySettings } from '../config/settings.js';
import type { Identity } from '../data-plane/drop-root.js';

/** The user the data plane drops to: --user, else nobody when there is one, else it stays root (also when we are not root). */
export function dataPlaneUser(s: Pick<GatewaySettings, 'user'>): Identity | null {
  if (process.getuid?.() !== 0) return null;
  if (s.user === 'root' || s.user === '0') return null;
  try {
    return resolveUser(s.user ?? 'nobody');
  } catch (e) {
    if (s.user !== undefined) throw new ConfigError((e as Error).message);
    return null;
  }
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
  let text: string;
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
