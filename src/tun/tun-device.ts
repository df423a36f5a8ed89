// The device behind the stack. A real TUN (native batched I/O, or tuntap2)
// and the in-memory pipe used by tests both implement it.

/** A batch of received packets in pooled slots, valid only during the handler call. */
export interface RxBatch {
  /** Pre-made views of fixed slots over one slab. */
  readonly slots: readonly Buffer[];
  /** Length of the packet in slots[i], for i < count. */
  readonly lengths: Uint32Array;
  count: number;
}

export interface TunDevice {
  readonly name: string;
  readonly mtu: number;
  /** Begin delivering batches. The handler runs on the event loop; slots are reused after it returns. */
  start(onBatch: (batch: RxBatch) => void): void;
  /** A TX slot with room for one packet of up to mtu bytes. Fill it, then commitTx(length). */
  txSlot(): Buffer;
  commitTx(length: number): void;
  /** Write every committed packet to the device. Called after each batch and each tick. */
  flushTx(): void;
  close(): void;
}
