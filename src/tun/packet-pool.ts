// Fixed packet slots over one slab each way, so the hot path allocates nothing:
// RX: the reader fills slots [0, count) and their lengths, the stack reads them in
// place during the batch call. TX: the stack fills txSlot(), commits its length,
// and flushTx() hands all committed packets to the device in one call.
import type { RxBatch } from './tun-device.js';

/** Slots start on 64-byte boundaries (cache lines); a slot holds one packet of up to mtu bytes. */
export const SLOT_ALIGN = 64;
export const MAX_MTU = 65535;

export function slotSizeFor(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > MAX_MTU) throw new RangeError(`mtu ${mtu} not in 68..${MAX_MTU}`);
  return slotBytes(mtu);
}

/** A slot of at least n bytes, rounded up to SLOT_ALIGN. */
export function slotBytes(n: number): number {
  return Math.ceil(n / SLOT_ALIGN) * SLOT_ALIGN;
}

function makeSlots(slab: Buffer, slotSize: number, viewLength: number, capacity: number): Buffer[] {
  const slots: Buffer[] = new Array(capacity);
  for (let i = 0; i < capacity; i++) slots[i] = slab.subarray(i * slotSize, i * slotSize + viewLength);
  return slots;
}

/** The RX side: the RxBatch the device hands to the stack, refilled in place each batch. */
export class RxSlab implements RxBatch {
  readonly slab: Buffer;
  /** Each view spans the whole slot (slotSize bytes); the packet is the first lengths[i]. */
  readonly slots: readonly Buffer[];
  readonly lengths: Uint32Array;
  count = 0;

  constructor(
    readonly slotSize: number,
    readonly capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity} < 1`);
    this.slab = Buffer.alloc(slotSize * capacity);
    this.lengths = new Uint32Array(capacity);
    this.slots = makeSlots(this.slab, slotSize, slotSize, capacity);
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  /** Copy one packet into the next slot (backends without native batching). False: full or too long. */
  push(packet: Uint8Array, offset = 0, length = packet.length - offset): boolean {
    if (this.count >= this.capacity || length > this.slotSize || length <= 0) return false;
    const i = this.count++;
    this.slab.set(packet.subarray(offset, offset + length), i * this.slotSize);
    this.lengths[i] = length;
    return true;
  }

  reset(): void {
    this.count = 0;
  }
}

/**
 * Writes slots [0, count) of the slab, lengths[i] bytes each, slot i at i * slotSize.
 * Returns how many went; the rest are counted as drops. May throw if the device is unusable.
 */
export type TxWriter = (slab: Buffer, lengths: Uint32Array, count: number, slotSize: number) => number;

export interface TxStats {
  /** Packets the writer accepted. */
  packets: number;
  bytes: number;
  /** Committed packets the writer did not take (EAGAIN, ENOBUFS, rejected, device gone). */
  drops: number;
  flushes: number;
  /** Flushes forced by a full slab before the caller's flushTx(). */
  autoFlushes: number;
}

export interface TxSlabOptions {
  /** The largest packet a slot holds (segmentation offload: up to 64 KiB whatever the MTU); default mtu. */
  maxPacket?: number;
  /** Bytes of virtio-net header in front of each packet (txHeader()); default 0. */
  headerLen?: number;
}

/** The TX side: txSlot() / txHeader() / commitTx(len) / flushTx() of the TunDevice. */
export class TxSlab {
  readonly slab: Buffer;
  readonly lengths: Uint32Array;
  readonly slotSize: number;
  /** The largest packet commitTx() takes, and the header in front of it. */
  readonly maxPacket: number;
  readonly headerLen: number;
  readonly stats: TxStats = { packets: 0, bytes: 0, drops: 0, flushes: 0, autoFlushes: 0 };
  private readonly slots: Buffer[];
  private readonly heads: Buffer[];
  private n = 0;
  private pendingBytes = 0;

  constructor(
    readonly mtu: number,
    readonly capacity: number,
    private readonly writer: TxWriter,
    opts: TxSlabOptions = {},
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity} < 1`);
    this.maxPacket = opts.maxPacket ?? mtu;
    this.headerLen = opts.headerLen ?? 0;
    this.slotSize = slotBytes(this.headerLen + this.maxPacket);
    this.slab = Buffer.alloc(this.slotSize * capacity);
    this.lengths = new Uint32Array(capacity);
    // Views are maxPacket long, after the header: a packet written past them would not fit the device anyway.
    this.slots = new Array(capacity);
    this.heads = new Array(capacity);
    for (let i = 0; i < capacity; i++) {
      const at = i * this.slotSize;
      this.heads[i] = this.slab.subarray(at, at + this.headerLen);
      this.slots[i] = this.slab.subarray(at + this.headerLen, at + this.headerLen + this.maxPacket);
    }
  }

  /** Committed, not yet flushed. */
  get pending(): number {
    return this.n;
  }

  /** The next free slot (mtu bytes). The same slot until commitTx(); flushes first when the slab is full. */
  txSlot(): Buffer {
    if (this.n >= this.capacity) {
      this.stats.autoFlushes++;
      this.flushTx();
    }
    return this.slots[this.n];
  }

  /** The virtio-net header of the slot txSlot() returned (empty without one). */
  txHeader(): Buffer {
    if (this.n >= this.capacity) {
      this.stats.autoFlushes++;
      this.flushTx();
    }
    return this.heads[this.n];
  }

  /** length: the packet's, without the header. */
  commitTx(length: number): void {
    if (!(length >= 1 && length <= this.maxPacket) || !Number.isInteger(length)) {
      throw new RangeError(`commitTx(${length}): length must be an integer in 1..${this.maxPacket}`);
    }
    if (this.n >= this.capacity) {
      // commit without txSlot() on a full slab: make room, but the slot's bytes are gone.
      throw new RangeError('commitTx() on a full TX slab without txSlot()');
    }
    this.lengths[this.n++] = length + this.headerLen;
    this.pendingBytes += length;
  }

  /** Hand every committed packet to the writer in one call; returns how many it took. */
  flushTx(): number {
    const count = this.n;
    if (count === 0) return 0;
    const bytes = this.pendingBytes;
    this.n = 0;
    this.pendingBytes = 0;
    this.stats.flushes++;
    let written = 0;
    try {
      written = this.writer(this.slab, this.lengths, count, this.slotSize);
    } finally {
      this.stats.packets += written;
      this.stats.drops += count - written;
      if (written === count) this.stats.bytes += bytes;
      else for (let i = 0; i < written; i++) this.stats.bytes += this.lengths[i] - this.headerLen; // rare
    }
    return written;
  }

  /** Forget committed packets without writing them (device closing); they count as drops. */
  discard(): void {
    this.stats.drops += this.n;
    this.n = 0;
    this.pendingBytes = 0;
  }
}
