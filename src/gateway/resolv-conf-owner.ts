// Per-host mode rewrites a resolver file; it must be this network namespace's
// own. `ip netns exec NS` gives a namespace its own /etc/resolv.conf only when
// /etc/netns/NS/resolv.conf exists (it bind-mounts it over); without one, the
// file there is the machine's, which every program outside the namespace uses,
// and rewriting it would send their DNS to an address that only exists inside.
// The test: we run in another network namespace than pid 1 (the machine's
// init, or a container's) and the file is the very one pid 1 resolves with.
import { lstatSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** Why rewriting `path` would change the resolver of processes outside this network namespace, or null. */
export function sharedResolvConfProblem(path: string, proc = '/proc'): string | null {
  let netSelf: string;
  let netInit: string;
  try {
    netSelf = readlinkSync(join(proc, 'self/ns/net'));
    netInit = readlinkSync(join(proc, '1/ns/net'));
  } catch {
    return null; // no /proc to ask (or pid 1 hidden): nothing to tell
  }
  if (netSelf === netInit) return null; // pid 1's own namespace: its resolver is ours
  const initRoot = join(proc, '1/root');
  const theirs = fileIn(initRoot, '/etc/resolv.conf');
  let ours: { dev: number; ino: number };
  let init: { dev: number; ino: number };
  try {
    ours = statSync(resolve(path));
    init = statSync(theirs);
  } catch {
    return null; // one of them does not exist: not the same file
  }
  if (ours.dev !== init.dev || ours.ino !== init.ino) return null;
  return `${path} is the resolver file of pid 1's network namespace (this machine's, or its container's), and this gateway runs in another one: rewriting it would send everyone else's DNS to an address that exists only in this namespace. Give the namespace a resolver file of its own (for \`ip netns exec NS\`: /etc/netns/NS/resolv.conf), or pass --shared-resolv-conf if that is really meant`;
}

/** A path inside another root (/proc/1/root), following symlinks there: an absolute link would otherwise resolve in our own root. */
function fileIn(root: string, path: string): string {
  let p = path;
  for (let i = 0; i < 16; i++) {
    try {
      if (!lstatSync(join(root, p)).isSymbolicLink()) break;
      const target = readlinkSync(join(root, p));
      p = target.startsWith('/') ? target : join(dirname(p), target);
    } catch {
      break;
    }
  }
  return join(root, p);
}
