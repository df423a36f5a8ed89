// The `user` and `process` keys, and the transport a rule-set's `network`
// reads. An owner that was not found (null) or not looked up (undefined)
// matches no user and no process: a rule on who made a connection never
// applies to a connection whose maker is unknown.
import type { ConnectionOwner, MatchInput, ProcessMatch, UidRange } from './rule-types.js';

export function uidIn(ranges: readonly UidRange[], owner: ConnectionOwner | null | undefined): boolean {
  if (!owner) return false;
  return ranges.some((r) => r.from <= owner.uid && owner.uid <= r.to);
}

/** The executable's name: the last part of its path. */
export function exeName(exe: string): string {
  return exe.slice(exe.lastIndexOf('/') + 1);
}

/**
 * A path compares with the executable's path; a name with the executable's
 * name or the kernel's comm (python3 runs /usr/bin/python3.11: its comm is
 * python3).
 */
export function processIs(list: readonly ProcessMatch[], owner: ConnectionOwner | null | undefined): boolean {
  if (!owner) return false;
  const { exe, comm } = owner;
  if (exe === undefined && comm === undefined) return false;
  return list.some((p) => ('path' in p ? p.path === exe : (exe !== undefined && exeName(exe) === p.name) || p.name === comm));
}

export function transportOf(input: Pick<MatchInput, 'protocol' | 'transport'>): 'tcp' | 'udp' {
  if (input.transport) return input.transport;
  return input.protocol === 'udp' || input.protocol === 'quic' ? 'udp' : 'tcp';
}
