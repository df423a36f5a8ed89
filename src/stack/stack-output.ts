// Packets out to the device: a TX slot is filled, committed and counted; the
// device is flushed once after the current batch or callback (a microtask), so
// every packet one event produced leaves in one write.
import type { TunDevice } from '../tun/tun-device.js';
import type { StackCounters } from './stack-options.js';

export class StackOutput {
  private flushQueued = false;
  private readonly flush = () => {
    this.flushQueued = false;
    this.dev.flushTx();
  };

  constructor(
    private readonly dev: TunDevice,
    private readonly counters: StackCounters,
  ) {}

  /** The device's MTU: the largest packet a slot holds. */
  get mtu(): number {
    return this.dev.mtu;
  }

  /** The slot to write the next packet into (the same one until commit). */
  slot(): Buffer {
    return this.dev.txSlot();
  }

  commit(len: number): void {
    this.dev.commitTx(len);
    this.counters.packetsOut++;
    this.counters.bytesOut += len;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }
}
