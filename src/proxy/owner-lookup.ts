// The proxy core's contract for who made a connection: src/owner implements
// it (sock_diag, then /proc), the data plane wires it in. Asked once per
// connection, and only when a rule at or before the match reads the owner.
import type { Endpoint } from '../net/endpoint.js';
import type { ConnectionOwner } from './rules/rule-types.js';

export type OwnerAnswer = { owner: ConnectionOwner; why?: string } | { owner: null; why: string };

export interface OwnerLookup {
  /** need 1: the uid is enough; 2: the process too. src is the client socket's own end, dst its peer. */
  lookup(proto: 'tcp' | 'udp', src: Endpoint, dst: Endpoint, need: 1 | 2): Promise<OwnerAnswer>;
}

/** The owner as a connection's log line holds it. */
export function ownerFields(a: OwnerAnswer): Record<string, unknown> {
  if (a.owner === null) return { owner: null, owner_why: a.why };
  const o = a.owner;
  return {
    owner: { uid: o.uid, ...(o.pid !== undefined ? { pid: o.pid } : {}), ...(o.exe !== undefined ? { exe: o.exe } : {}), ...(o.comm !== undefined ? { comm: o.comm } : {}) },
    ...(a.why ? { owner_why: a.why } : {}),
  };
}
