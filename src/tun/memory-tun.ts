// In-memory TunDevice for tests of the stack without a kernel TUN.
//   const dev = new MemoryTun({ mtu: 1500 });    // inject() packets in, onTx()/takeTx() packets out
//   const [a, b] = memoryTunPair(1500);          // what a flushes, b receives, and back
// Delivery is in batches (up to `batch` packets per onBatch call) on setImmediate,
// one batch per turn like one TUN wake-up, or synchronously with { sync: true }.
// Packets are copied on inject and on flush, so callers may reuse their buffers.
import { MAX_GSO_PACKET, NO_OFFLOAD, type RxBatch, type TunDevice, type TunOffload } from './tun-device.js';
import { RxSlab, TxSlab, slotBytes } from './packet-pool.js';
import type { TunHandle, TunStats } from './linux-tun.js';

export interface MemoryTunOptions {
  name?: string;
  /** Default 1500. */
  mtu?: number;
  /** Packets per onBatch call, default 64. */
  batch?: number;
  /** TX slots before an automatic flush, default 64. */
  txBatch?: number;
  /** Deliver inside inject()/the peer's flushTx() instead of on setImmediate. */
  sync?: boolean;
  /** Injected packets waiting for delivery before more are dropped, default 4096. */
  queueLimit?: number;
  /** Keep flushed packets for takeTx(), default true; at most captureLimit (default 100000). */
  capture?: boolean;
  captureLimit?: number;
  /**
   * Act as a TUN with these offloads: packets injected and captured carry the
   * virtio-net header (vnetHdrLen bytes) in front, as a real one's reads and writes do.
   */
  offload?: TunOffload;
}

export class MemoryTun implements TunHandle, TunDevice {
  readonly name: string;
  readonly mtu: number;
  readonly sync: boolean;
  readonly offload: TunOffload;
  /** The largest packet injected or written, its header included. */
  private readonly maxFrame: number;
  private readonly rx: RxSlab;
  private readonly tx: TxSlab;
  private readonly queue: Buffer[] = [];
  private head = 0;
  private readonly queueLimit: number;
  private readonly capture: boolean;
  private readonly captureLimit: number;
  private captured: Buffer[] = [];
  private readonly txListeners: ((packet: Buffer) => void)[] = [];
  private onBatch: ((batch: RxBatch) => void) | null = null;
  private scheduled = false;
  private delivering = false;
  private paused = false;
  private closed = false;
  private readonly rxStats = { wakes: 0, batches: 0, packets: 0, bytes: 0, truncated: 0, errors: 0 };
  /** Injected packets dropped: queue full, longer than mtu, empty, or device closed. */
  rxDrops = 0;
  /** Flushed packets not captured because captureLimit was reached. */
  captureDrops = 0;

  constructor(opts: MemoryTunOptions = {}) {
    this.name = opts.name ?? 'memtun0';
    this.mtu = opts.mtu ?? 1500;
    this.sync = opts.sync ?? false;
    this.queueLimit = opts.queueLimit ?? 4096;
    this.capture = opts.capture ?? true;
    this.captureLimit = opts.captureLimit ?? 100_000;
    this.offload = opts.offload ?? NO_OFFLOAD;
    const hdr = this.offload.vnetHdrLen;
    const maxPacket = hdr > 0 && (this.offload.tso4 || this.offload.tso6 || this.offload.uso) ? MAX_GSO_PACKET : this.mtu;
    this.maxFrame = hdr + maxPacket;
    this.rx = new RxSlab(slotBytes(this.maxFrame), opts.batch ?? 64);
    this.tx = new TxSlab(
      this.mtu,
      opts.txBatch ?? 64,
      (slab, lengths, count, slotSize) => {
        // Copy everything out first: a listener may re-enter this device (a pair in sync mode).
        const out: Buffer[] = new Array(count);
        for (let i = 0; i < count; i++) out[i] = Buffer.from(slab.subarray(i * slotSize, i * slotSize + lengths[i]));
        for (const p of out) {
          if (this.capture) {
            if (this.captured.length < this.captureLimit) this.captured.push(p);
            else this.captureDrops++;
          }
          for (const l of this.txListeners) l(p);
        }
        return count;
      },
      { maxPacket, headerLen: hdr },
    );
  }

  /** Queue one packet (copied) for delivery to the handler. False if it was dropped. */
  inject(packet: Uint8Array): boolean {
    if (this.closed || packet.length === 0 || packet.length > this.maxFrame || this.queue.length - this.head >= this.queueLimit) {
      this.rxDrops++;
      return false;
    }
    this.queue.push(Buffer.from(packet));
    this.kick();
    return true;
  }

  /** Called with a copy of every packet the stack flushes, in order. */
  onTx(cb: (packet: Buffer) => void): void {
    this.txListeners.push(cb);
  }

  /** The captured TX packets since the last call. */
  takeTx(): Buffer[] {
    const c = this.captured;
    this.captured = [];
    return c;
  }

  /** Injected packets not delivered yet. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  start(onBatch: (batch: RxBatch) => void): void {
    if (this.closed) throw Object.assign(new Error(`${this.name}: closed`), { code: 'ERR_TUN_CLOSED' });
    if (this.onBatch) throw Object.assign(new Error(`${this.name}: already started`), { code: 'ERR_TUN_STARTED' });
    this.onBatch = onBatch;
    this.kick();
  }

  txSlot(): Buffer {
    return this.tx.txSlot();
  }

  txHeader(): Buffer {
    return this.tx.txHeader();
  }

  commitTx(length: number): void {
    this.tx.commitTx(length);
  }

  flushTx(): void {
    if (this.closed) this.tx.discard();
    else this.tx.flushTx();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.kick();
  }

  stats(): TunStats {
    return { rx: { ...this.rxStats }, tx: { ...this.tx.stats } };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tx.discard();
    this.rxDrops += this.queue.length - this.head;
    this.queue.length = 0;
    this.head = 0;
  }

  private get ready(): boolean {
    return this.onBatch !== null && !this.paused && !this.closed && this.head < this.queue.length;
  }

  private kick(): void {
    if (!this.ready) return;
    if (this.sync) {
      // Re-entered from inside a batch (the handler flushed to a sync peer that answered):
      // the loop below picks the new packets up, so the stack never recurses.
      if (this.delivering) return;
      this.delivering = true;
      try {
        for (let guard = 0; this.ready && guard < 1_000_000; guard++) this.deliverOne();
      } finally {
        this.delivering = false;
      }
    } else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (this.ready) this.deliverOne();
        this.kick();
      });
    }
  }

  /** Move up to one batch from the queue into the RX slab and hand it over. */
  private deliverOne(): void {
    const rx = this.rx;
    rx.reset();
    while (this.head < this.queue.length && !rx.full) {
      const p = this.queue[this.head];
      this.queue[this.head++] = undefined as unknown as Buffer;
      rx.push(p);
      this.rxStats.bytes += p.length;
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.rxStats.wakes++;
    this.rxStats.batches++;
    this.rxStats.packets += rx.count;
    try {
      this.onBatch!(rx);
    } finally {
      rx.reset();
    }
  }
}

/** Two devices joined back to back: packets a flushes arrive at b, and the other way. */
export function memoryTunPair(mtu = 1500, opts: Omit<MemoryTunOptions, 'mtu' | 'name'> = {}): [MemoryTun, MemoryTun] {
  const a = new MemoryTun({ capture: false, ...opts, mtu, name: 'memtun-a' });
  const b = new MemoryTun({ capture: false, ...opts, mtu, name: 'memtun-b' });
  a.onTx((p) => b.inject(p));
  b.onTx((p) => a.inject(p));
  return [a, b];
}
