// TunDevice over the tunsteer_tun addon: a non-blocking fd, a uv_poll reader
// that reads up to `batch` packets into one RX slab per wake-up and calls JS
// once, and a TX slab flushed with one native call (one write() per packet), or
// with txThread a ring of TX slabs whose writes a native thread does (tx-ring.ts).
import { closeSync } from 'node:fs';
import { MAX_GSO_PACKET, NO_OFFLOAD, type RxBatch, type TunDevice, type TunOffload } from './tun-device.js';
import { RxSlab, TxSlab, slotBytes, type TxStats } from './packet-pool.js';
import { loadTunAddon, type NativeTunReader, type NativeTxThread, type TunReaderStats, type TxThreadStats } from './native-addon.js';
import { TxRing, type TxQueue } from './tx-ring.js';
import { checkIfName, configureLink } from './ip-link.js';
import { enableOffloads } from './tun-offload.js';

export interface TunOptions {
  /** Interface name (<= 15 bytes); empty or absent: the kernel picks tunN. */
  name?: string;
  /** 576..65520 is what the gateway uses; default 1500. */
  mtu?: number;
  /** CIDRs assigned with `ip addr add`, e.g. ['198.18.0.1/30']. */
  addresses?: readonly string[];
  /** Packets per RX batch (one JS call each), default 64. */
  batch?: number;
  /** TX slots before an automatic flush, default 64. */
  txBatch?: number;
  /**
   * Kernel queue towards the reader (`ip link set txqueuelen`); the kernel default is 500.
   * A longer queue absorbs the reader's scheduling hiccups instead of dropping.
   */
  txQueueLen?: number;
  /**
   * Create and configure the device in this network namespace (a path such as
   * /proc/PID/ns/net) while this process stays where it is: its upstream
   * sockets keep the outer namespace's routes (tunsteer run, up --netns).
   */
  netns?: string;
  /** Called when the device fails (read error, write on a dead fd). Default: process warning. */
  onError?: (err: Error) => void;
  /**
   * Queues (IFF_MULTI_QUEUE), default 1: one fd each, and the kernel steers each
   * flow to one queue by its hash, so one reader per queue (a worker thread)
   * sees every packet of its flows and none of the others'. The handle reads
   * queue 0; `fds` lists all for the readers of the others.
   */
  queues?: number;
  /**
   * Offloads (IFF_VNET_HDR): checksums and TCP/UDP segmentation left to the
   * kernel where it accepts them (tun-offload.ts). Default false. An adopted
   * fd has what it was opened with, whatever this says.
   */
  offload?: boolean;
  /**
   * A native writer thread per fd does the TUN write()s (the local kernel's
   * receive path runs inside each) while JS goes on: flushTx() hands a bank of
   * a ring to it. Default: the TUNSTEER_TX_THREAD environment variable ('1' on), else off.
   */
  txThread?: boolean;
  /** With queues > 1: told why the steering program did not attach (the device still works, steered by the kernel). Default: process warning. */
  onSteeringError?: (err: Error) => void;
}

export interface TunStats {
  rx: TunReaderStats;
  /** With a writer thread: what the kernel took (the thread's drops already moved from packets to drops). */
  tx: TxStats;
  /** The writer thread's own counters, when there is one. */
  txThread?: TxThreadStats;
}

/** A TunDevice with the extras benchmarks and the gateway may use. */
export interface TunHandle extends TunDevice {
  /** Stop reading (backpressure): the kernel queues, then drops (txqueuelen). */
  pause(): void;
  resume(): void;
  stats(): TunStats;
  /** The device's fd, to hand to a data-plane child (native backend only). */
  readonly fd?: number;
  /** Every queue's fd, fds[0] === fd (native backend only; one entry without IFF_MULTI_QUEUE). */
  readonly fds?: readonly number[];
  /**
   * Queues are chosen by our eBPF program (steering.c): a UDP flow's fragments
   * reach its queue. False with one queue, or where the program did not load
   * (the kernel's flow-hash steering then sends fragments by addresses alone).
   */
  readonly steering?: boolean;
}

export const DEFAULT_MTU = 1500;
export const DEFAULT_BATCH = 64;
/** TX banks in the writer thread's ring: the JS thread fills one while the thread writes the others. */
export const TX_THREAD_BANKS = 4;
/**
 * A flush of at most this many bytes, with nothing queued, is written on the JS
 * thread: a small reply (keep-alive, a handshake) then costs one write instead of
 * a wake-up of the writer on the other core (the bench: p50 of one keep-alive
 * connection 0.13 -> 0.17 ms without it). Bulk segments go to the thread.
 */
export const TX_THREAD_INLINE_BYTES = 4096;
/** The kernel's limit on a TUN's queues (MAX_TAP_QUEUES, 256 since Linux 4.x). */
export const MAX_QUEUES = 256;

export function defaultOnError(err: Error): void {
  process.emitWarning(err.message, { code: (err as NodeJS.ErrnoException).code ?? 'ERR_TUN' });
}

/** opts.txThread, else the TUNSTEER_TX_THREAD environment variable ('1' on, '0' or unset off). */
export function txThreadWanted(opts: TunOptions, env: NodeJS.ProcessEnv = process.env): boolean {
  if (opts.txThread !== undefined) return opts.txThread;
  const v = env.TUNSTEER_TX_THREAD;
  if (v === undefined || v === '' || v === '0') return false;
  if (v === '1') return true;
  throw new RangeError(`TUNSTEER_TX_THREAD=${v}: must be 0 or 1`);
}

export function checkOptions(opts: TunOptions): { mtu: number; batch: number; txBatch: number; txThread: boolean } {
  const mtu = opts.mtu ?? DEFAULT_MTU;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new RangeError(`mtu ${mtu} not in 68..65535`);
  const batch = opts.batch ?? DEFAULT_BATCH;
  const txBatch = opts.txBatch ?? DEFAULT_BATCH;
  for (const [k, v] of [
    ['batch', batch],
    ['txBatch', txBatch],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 4096) throw new RangeError(`${k} ${v} not in 1..4096`);
  }
  if (opts.name) checkIfName(opts.name);
  const queues = opts.queues ?? 1;
  if (!Number.isInteger(queues) || queues < 1 || queues > MAX_QUEUES) throw new RangeError(`queues ${queues} not in 1..${MAX_QUEUES}`);
  if (opts.txQueueLen !== undefined && !(Number.isInteger(opts.txQueueLen) && opts.txQueueLen >= 1 && opts.txQueueLen <= 1 << 20)) {
    throw new RangeError(`txQueueLen ${opts.txQueueLen} not in 1..${1 << 20}`);
  }
  return { mtu, batch, txBatch, txThread: txThreadWanted(opts) };
}

class NativeTun implements TunHandle {
  private readonly rx: RxSlab;
  private readonly tx: TxQueue;
  private readonly txThread: NativeTxThread | null = null;
  private reader: NativeTunReader | null = null;
  private closed = false;
  private readonly onError: (err: Error) => void;
  steering = false;

  constructor(
    readonly fd: number,
    /** Queue 0 (fd) and the other queues' fds, which this handle keeps open but does not read. */
    readonly fds: readonly number[],
    readonly name: string,
    readonly mtu: number,
    batch: number,
    txBatch: number,
    onError: ((err: Error) => void) | undefined,
    readonly offload: TunOffload = NO_OFFLOAD,
    txThread = false,
  ) {
    this.onError = onError ?? defaultOnError;
    const hdr = offload.vnetHdrLen;
    // With TSO the kernel hands over (and takes) segments of up to 64 KiB whatever the MTU.
    const gso = hdr > 0 && (offload.tso4 || offload.tso6 || offload.uso);
    const maxPacket = gso ? MAX_GSO_PACKET : mtu;
    this.rx = new RxSlab(slotBytes(hdr + maxPacket), batch);
    const addon = loadTunAddon();
    const slabOpts = { maxPacket, headerLen: hdr };
    if (txThread) {
      let thread: NativeTxThread | null = null;
      const ring = new TxRing(mtu, txBatch, TX_THREAD_BANKS, (bank, count) => (thread as NativeTxThread).submit(bank, count), slabOpts);
      const banks = ring.banks;
      thread = addon.createTxThread(
        this.fd,
        banks.map((b) => b.slab),
        banks.map((b) => b.lengths),
        banks[0].slotSize,
        txBatch,
      );
      this.txThread = thread;
      this.tx = ring;
    } else {
      this.tx = new TxSlab(mtu, txBatch, (slab, lengths, count, slotSize) => addon.writeBatch(this.fd, slab, lengths, count, slotSize), slabOpts);
    }
  }

  start(onBatch: (batch: RxBatch) => void): void {
    if (this.closed) throw Object.assign(new Error(`${this.name}: closed`), { code: 'ERR_TUN_CLOSED' });
    if (this.reader) throw Object.assign(new Error(`${this.name}: already started`), { code: 'ERR_TUN_STARTED' });
    const rx = this.rx;
    this.reader = loadTunAddon().createReader(this.fd, rx.slab, rx.lengths, rx.slotSize, rx.capacity, (count, err) => {
      if (count > 0) {
        rx.count = count;
        try {
          onBatch(rx);
        } finally {
          rx.count = 0;
        }
      }
      if (err) this.onError(err);
    });
    this.reader.resume();
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
    if (this.closed) {
      this.tx.discard();
      return;
    }
    try {
      this.tx.flushTx();
    } catch (e) {
      this.onError(e as Error);
    }
  }

  pause(): void {
    this.reader?.pause();
  }

  resume(): void {
    if (!this.closed) this.reader?.resume();
  }

  stats(): TunStats {
    const rx = this.reader?.stats() ?? { wakes: 0, batches: 0, packets: 0, bytes: 0, truncated: 0, errors: 0 };
    const tx = { ...this.tx.stats };
    if (!this.txThread) return { rx, tx };
    // Submitted packets counted as sent; those the thread could not write move to drops.
    const txThread = this.txThread.stats();
    tx.packets -= txThread.drops;
    tx.drops += txThread.drops;
    tx.bytes -= txThread.dropBytes - txThread.drops * this.offload.vnetHdrLen;
    return { rx, tx, txThread };
  }

  /** Idempotent. The kernel removes a non-persistent TUN when its last fd closes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.reader?.close(); // stop polling before the fd number can be reused
    this.tx.discard();
    this.txThread?.close(); // writes what is queued and joins, before the fd can close
    for (const fd of this.fds) closeSync(fd);
  }
}

/** Open a TUN with the native batched backend, configure it with iproute2 and bring it up. */
export function openLinuxTun(opts: TunOptions = {}): TunHandle {
  const { mtu, batch, txBatch, txThread } = checkOptions(opts);
  const addon = loadTunAddon();
  const { fds, name } = openQueues(addon, opts);
  let dev: NativeTun | null = null;
  try {
    dev = new NativeTun(fds[0], fds, name, mtu, batch, txBatch, opts.onError, enableOffloads(addon, fds[0]), txThread);
    if (fds.length > 1) dev.steering = attachSteering(addon, fds[0], opts.onSteeringError);
    configureLink(name, { mtu, addresses: opts.addresses, txQueueLen: opts.txQueueLen, netns: opts.netns });
    return dev;
  } catch (e) {
    if (dev) dev.close();
    else for (const fd of fds) closeSync(fd);
    throw e;
  }
}

let steeringLoads: boolean | undefined;

/**
 * Whether our steering program loads here (asked once): where it does not
 * (no addon, a kernel before 4.16, no CAP_BPF), the kernel steers, and a UDP
 * flow's fragments may reach another queue than its whole datagrams.
 */
export function tunSteeringAvailable(): boolean {
  if (steeringLoads === undefined) {
    try {
      steeringLoads = loadTunAddon().tunSteeringLoads();
    } catch {
      steeringLoads = false;
    }
  }
  return steeringLoads;
}

/**
 * Our steering program on a multi-queue device (one fd is enough: the program
 * is the device's). False, and the kernel's steering, where it does not load.
 */
function attachSteering(addon: ReturnType<typeof loadTunAddon>, fd: number, onError: ((err: Error) => void) | undefined): boolean {
  try {
    addon.tunSteeringAttach(fd);
    return true;
  } catch (e) {
    (onError ?? defaultOnError)(
      Object.assign(new Error(`TUN steering program not attached, the kernel steers (a UDP flow's fragments may reach another queue): ${(e as Error).message}`), { cause: e }),
    );
    return false;
  }
}

/**
 * One fd per queue. One queue: a plain TUN, as before. More: the first open
 * creates the device with IFF_MULTI_QUEUE, each next one attaches a queue to
 * it by name (TUNSETIFF with the same name and flags). With offload, every
 * queue carries IFF_VNET_HDR; a kernel that refuses the flag (EINVAL on the
 * first open) gets a plain TUN.
 */
function openQueues(addon: ReturnType<typeof loadTunAddon>, opts: TunOptions): { fds: number[]; name: string } {
  const queues = opts.queues ?? 1;
  const multi = queues > 1 ? addon.IFF_MULTI_QUEUE : 0;
  let name = opts.name ?? '';
  let flags = multi | (opts.offload ? addon.IFF_VNET_HDR : 0);
  const fds: number[] = [];
  try {
    for (let i = 0; i < queues; i++) {
      let q: { fd: number; name: string };
      try {
        q = addon.open(name, flags, opts.netns);
      } catch (e) {
        if (i > 0 || flags === multi || (e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        flags = multi;
        q = addon.open(name, flags, opts.netns);
      }
      fds.push(q.fd);
      name = q.name;
    }
  } catch (e) {
    for (const fd of fds) closeSync(fd);
    throw e;
  }
  return { fds, name };
}

/**
 * A TUN whose fd this process inherited, already configured and up (the
 * supervisor opened it): no ioctl, no iproute2, so no privilege needed.
 */
export function adoptLinuxTun(fd: number, name: string, opts: TunOptions = {}): TunHandle {
  const { mtu, batch, txBatch, txThread } = checkOptions(opts);
  return new NativeTun(fd, [fd], name, mtu, batch, txBatch, opts.onError, enableOffloads(loadTunAddon(), fd), txThread);
}
