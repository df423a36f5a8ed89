// The TUN device node: route-all and per-host open /dev/net/tun; without it
// (a container without the device, a kernel without tun) they cannot start.
import type { DoctorContext } from '../context.js';
import type { Finding } from '../finding.js';

const PATH = '/dev/net/tun';

export function checkTunDevice(ctx: DoctorContext): Finding[] {
  const k = ctx.kind(PATH);
  if (!k.exists) {
    return [
      {
        level: 'block',
        check: 'tun',
        what: `${PATH} does not exist`,
        todo: 'route-all, per-host and run need it: modprobe tun, or give the container the device (--device /dev/net/tun); redirect and tproxy need none',
      },
    ];
  }
  if (!k.charDevice) {
    return [{ level: 'block', check: 'tun', what: `${PATH} is not a character device`, todo: 'recreate it: mknod /dev/net/tun c 10 200 (or modprobe tun)' }];
  }
  if (!k.readWrite && !ctx.isRoot) {
    return [
      {
        level: 'warn',
        check: 'tun',
        what: `${PATH} is not readable and writable by this user`,
        todo: 'run tunsteer up as root (it drops to --user after opening it), or use tunsteer run, which needs none',
      },
    ];
  }
  return [];
}
