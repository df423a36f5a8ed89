// Picks the TUN backend: 'native' (tunsteer_tun addon, batched) is the default;
// 'tuntap2' (the npm fork, one thread-pool read per packet) stays for comparison.
import { openLinuxTun, type TunHandle, type TunOptions } from './linux-tun.js';
import { openTuntap2Tun } from './tuntap2-tun.js';

export type TunBackend = 'native' | 'tuntap2';

export interface OpenTunOptions extends TunOptions {
  backend?: TunBackend;
}

export type { TunHandle, TunOptions } from './linux-tun.js';

/** Async so a backend may load lazily; the device is configured and up when it resolves. */
export async function openTun(opts: OpenTunOptions = {}): Promise<TunHandle> {
  const { backend = 'native', ...rest } = opts;
  switch (backend) {
    case 'native':
      return openLinuxTun(rest);
    case 'tuntap2':
      return openTuntap2Tun(rest);
    default:
      throw Object.assign(new RangeError(`unknown TUN backend ${String(backend)}`), { code: 'ERR_TUN_BACKEND' });
  }
}
