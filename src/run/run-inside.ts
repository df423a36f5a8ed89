// `tunsteer __tun-inside NAME MTU ADDRESS` (not for users): run by `tunsteer
// run` without root, inside the program's new user, network and mount
// namespaces, where it is root. It creates and configures the TUN, routes
// everything into it, and hands the fd out over fd 4 (SCM_RIGHTS): an
// unprivileged gateway outside could not enter the namespace to open it
// itself, the way slirp4netns and pasta get their TAP.
import { loadTunAddon } from '../tun/native-addon.js';
import { existsSync } from 'node:fs';
import { configureLink, ip } from '../tun/ip-link.js';
import { DEFAULT_TUN_ADDRESS6 } from '../config/defaults.js';

/** The fd the parent listens on for the TUN. */
export const TUN_HANDOFF_FD = 4;

export function runTunInside(argv: string[]): number {
  const [name, mtuText, address] = argv;
  const addon = loadTunAddon();
  let tun: { fd: number; name: string };
  try {
    tun = addon.open(name ?? '', 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
    // root of a user namespace is nobody to the device node's owner
    throw new Error(
      'cannot open /dev/net/tun from a user namespace: it must be readable and writable by everyone (mode 666, as most distributions ship it); here it is not, so run tunsteer run as root',
      { cause: e },
    );
  }
  configureLink(tun.name, { mtu: Number(mtuText), addresses: [address] });
  ip(['link', 'set', 'dev', 'lo', 'up']);
  ip(['route', 'add', 'default', 'dev', tun.name]);
  // IPv6 into the TUN as well; best effort: this new namespace has no other IPv6 route, so a failure leaves IPv6 unreachable, never leaked
  if (Number(mtuText) >= 1280 && existsSync('/proc/net/if_inet6')) {
    try {
      ip(['addr', 'add', DEFAULT_TUN_ADDRESS6, 'dev', tun.name, 'nodad']);
      ip(['-6', 'route', 'add', 'default', 'dev', tun.name]);
    } catch {
      // IPv6 disabled here
    }
  }
  addon.sendFd(TUN_HANDOFF_FD, tun.fd);
  return 0;
}
