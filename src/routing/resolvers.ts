// Which resolvers the gateway forwards DNS to, from the system's files: the
// nameservers of resolv.conf, except when they are only systemd-resolved's
// stub (127.0.0.53, 127.0.0.54): then the servers it uses itself, from
// /run/systemd/resolve/resolv.conf. Forwarding hijacked DNS to the stub would
// loop in route-all mode: resolved's own queries go into the TUN, where the
// gateway would hand them back to the stub.
import { readFileSync } from 'node:fs';
import { nameservers } from './per-host.js';

export const RESOLVED_UPSTREAMS = '/run/systemd/resolve/resolv.conf';
const STUB = /^127\.0\.0\.5[34]$/;

export interface SystemResolvers {
  upstreams: string[];
  /** The files they came from: follow these. */
  files: string[];
}

export function systemResolvers(resolvConf: string, resolvedFile = RESOLVED_UPSTREAMS): SystemResolvers {
  const own = nameservers(readQuiet(resolvConf));
  if (own.length > 0 && own.every((n) => STUB.test(n))) {
    const real = nameservers(readQuiet(resolvedFile));
    if (real.length > 0) return { upstreams: real, files: [resolvConf, resolvedFile] };
  }
  return { upstreams: own, files: [resolvConf] };
}

function readQuiet(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return ''; // no file: no resolver
  }
}
