// TUNSTEER_TEST_FAULTS (tests only): the data plane's TUN wrapped in the fault
// injector (tun/faulty-tun.ts), loudly, wherever the data plane runs.
import type { Logger } from '../logging/log.js';
import type { TunDevice } from '../tun/tun-device.js';
import { FaultyTun, parseFaultSpec } from '../tun/faulty-tun.js';

export function withTestFaults(dev: TunDevice | null, log: Logger): TunDevice | null {
  const faults = parseFaultSpec(process.env.TUNSTEER_TEST_FAULTS);
  if (!faults) return dev;
  log.warn({ faults }, 'TEST FAULT INJECTION on the TUN path (TUNSTEER_TEST_FAULTS)');
  return dev ? new FaultyTun(dev, faults) : null;
}
