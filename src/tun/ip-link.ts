// Link configuration with iproute2, argument arrays and no shell. Runs in the
// network namespace of this process: the caller picks it (ip netns exec).
import { execFileSync } from 'node:child_process';

/** `ip ARGS`, inside another network namespace (by path) when netns is given. */
export function ip(args: string[], netns?: string): void {
  const [bin, argv] = netns ? ['nsenter', [`--net=${netns}`, 'ip', ...args]] : ['ip', args];
  try {
    execFileSync(bin, argv, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    const why = err.stderr?.toString().trim() || err.message;
    throw Object.assign(new Error(`ip ${args.join(' ')}: ${why}`), { code: 'ERR_TUN_CONFIG' });
  }
}

export interface LinkConfig {
  mtu: number;
  /** CIDR strings, IPv4 or IPv6, e.g. '198.18.0.1/30'. */
  addresses?: readonly string[];
  /** Packets the kernel queues towards the reader before dropping (default 500 for a TUN). */
  txQueueLen?: number;
  /** Default true. */
  up?: boolean;
  /** Configure inside this network namespace (a path). */
  netns?: string;
}

/** MTU, addresses, then link up (an address added while down still applies on up). */
export function configureLink(name: string, cfg: LinkConfig): void {
  const ns = cfg.netns;
  ip(['link', 'set', 'dev', name, 'mtu', String(cfg.mtu)], ns);
  if (cfg.txQueueLen !== undefined) ip(['link', 'set', 'dev', name, 'txqueuelen', String(cfg.txQueueLen)], ns);
  // IPv6: no duplicate address detection (nobody else is on a TUN): usable at once, not tentative for a second or two
  for (const a of cfg.addresses ?? []) ip(['addr', 'add', a, 'dev', name, ...(a.includes(':') ? ['nodad'] : [])], ns);
  if (cfg.up ?? true) ip(['link', 'set', 'dev', name, 'up'], ns);
}

/** Rename a link; it must be down. */
export function renameLink(from: string, to: string): void {
  ip(['link', 'set', 'dev', from, 'name', to]);
}

/** Remove a link; errors ignored (it may be gone already). */
export function deleteLink(name: string): void {
  try {
    execFileSync('ip', ['link', 'del', 'dev', name], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // already gone
  }
}

export const IFNAMSIZ_MAX = 15;

export function checkIfName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > IFNAMSIZ_MAX || /[\s/:]/.test(name) || name === '.' || name === '..') {
    throw Object.assign(new RangeError(`bad interface name ${JSON.stringify(name)}: 1..15 bytes, no space, '/' or ':'`), {
      code: 'ERR_TUN_NAME',
    });
  }
}
