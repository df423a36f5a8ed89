// TunDevice over LinuxTun from @xiaobaidadada/node-tuntap2-wintun, kept so the
// two backends can be benchmarked side by side (docs/DECISIONS.md, "TUN I/O").
// The fork reads through an fs.ReadStream on a blocking fd: one libuv thread-pool
// read per packet, a fresh Buffer per packet, writes through an fs.WriteStream.
// It cannot name the device at creation, so a requested name is set with
// `ip link set dev tunN name NAME` while the link is still down.
import { createRequire } from 'node:module';
import type { RxBatch, TunDevice } from './tun-device.js';
import { RxSlab, TxSlab, slotSizeFor } from './packet-pool.js';
import { checkOptions, defaultOnError, type TunHandle, type TunOptions, type TunStats } from './linux-tun.js';
import { configureLink, deleteLink, renameLink } from './ip-link.js';

/** The part of the fork's Tuntap class used here. */
interface ForkTun {
  readonly name: string;
  on(event: 'data', cb: (chunk: Buffer) => void): unknown;
  on(event: 'error', cb: (err: Error) => void): unknown;
  removeAllListeners(event?: string): unknown;
  write(chunk: Buffer): boolean;
  readonly writableLength: number;
  pause(): unknown;
  resume(): unknown;
  release(cb?: () => void): void;
}

/** Bytes queued in the fork's write stream before further packets are dropped. */
const TX_QUEUE_LIMIT = 4 << 20;

class Tuntap2Tun implements TunHandle {
  private readonly rx: RxSlab;
  private readonly tx: TxSlab;
  private closed = false;
  private started = false;
  private readonly rxStats = { wakes: 0, batches: 0, packets: 0, bytes: 0, truncated: 0, errors: 0 };
  private readonly onError: (err: Error) => void;

  constructor(
    private readonly dev: ForkTun,
    readonly name: string,
    readonly mtu: number,
    txBatch: number,
    onError: ((err: Error) => void) | undefined,
  ) {
    this.onError = onError ?? defaultOnError;
    this.rx = new RxSlab(slotSizeFor(mtu), 1);
    this.tx = new TxSlab(mtu, txBatch, (slab, lengths, count, slotSize) => {
      let n = 0;
      for (let i = 0; i < count; i++) {
        if (this.dev.writableLength > TX_QUEUE_LIMIT) break;
        // The stream keeps the buffer until its thread-pool write ran: copy out of the slot.
        const off = i * slotSize;
        this.dev.write(Buffer.from(slab.subarray(off, off + lengths[i])));
        n++;
      }
      return n;
    });
    dev.on('error', (err) => {
      if (!this.closed) this.onError(err);
    });
  }

  start(onBatch: (batch: RxBatch) => void): void {
    if (this.closed) throw Object.assign(new Error(`${this.name}: closed`), { code: 'ERR_TUN_CLOSED' });
    if (this.started) throw Object.assign(new Error(`${this.name}: already started`), { code: 'ERR_TUN_STARTED' });
    this.started = true;
    const rx = this.rx;
    const st = this.rxStats;
    // One packet per 'data' event (one read() each): a batch of one.
    this.dev.on('data', (chunk: Buffer) => {
      st.wakes++;
      if (!rx.push(chunk)) {
        st.truncated++;
        return;
      }
      st.batches++;
      st.packets++;
      st.bytes += chunk.length;
      try {
        onBatch(rx);
      } finally {
        rx.reset();
      }
    });
  }

  txSlot(): Buffer {
    return this.tx.txSlot();
  }

  commitTx(length: number): void {
    this.tx.commitTx(length);
  }

  flushTx(): void {
    if (this.closed) this.tx.discard();
    else this.tx.flushTx();
  }

  pause(): void {
    this.dev.pause();
  }

  resume(): void {
    if (!this.closed) this.dev.resume();
  }

  stats(): TunStats {
    return { rx: { ...this.rxStats }, tx: { ...this.tx.stats } };
  }

  /**
   * Idempotent. The fork's read stream sits in a blocking read() on a thread-pool
   * thread, which holds the fd open; deleting the link wakes that read (it fails),
   * so the fd really closes and the thread is freed.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tx.discard();
    this.dev.removeAllListeners('data');
    this.dev.on('error', () => {});
    this.dev.release();
    deleteLink(this.name);
  }
}

/** Open a TUN through the tuntap2 fork, rename, configure with iproute2 and bring it up. */
export function openTuntap2Tun(opts: TunOptions = {}): TunHandle & TunDevice {
  const { mtu, txBatch } = checkOptions(opts);
  const require = createRequire(import.meta.url);
  const { LinuxTun } = require('@xiaobaidadada/node-tuntap2-wintun') as { LinuxTun: new () => ForkTun };
  const dev = new LinuxTun();
  let name = dev.name;
  try {
    if (opts.name && opts.name !== name) {
      renameLink(name, opts.name);
      name = opts.name;
    }
    configureLink(name, { mtu, addresses: opts.addresses, txQueueLen: opts.txQueueLen });
    return new Tuntap2Tun(dev, name, mtu, txBatch, opts.onError);
  } catch (e) {
    dev.on('error', () => {});
    dev.release();
    deleteLink(name);
    throw e;
  }
}
