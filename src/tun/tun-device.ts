// The device behind the stack. A real TUN (native batched I/O, or tuntap2)
// and the in-memory pipe used by tests both implement it.

/** A batch of received packets in pooled slots, valid only during the handler call. */
export interface RxBatch {
  /** Pre-made views of fixed slots over one slab. */
  readonly slots: readonly Buffer[];
  /** Length of the packet in slots[i], for i < count (its virtio-net header included when the device has one). */
  readonly lengths: Uint32Array;
  count: number;
}

/**
 * What a device offloads (IFF_VNET_HDR with TUNSETOFFLOAD, src/tun/tun-offload.ts).
 * With vnetHdrLen > 0 every packet read starts with a virtio-net header of that
 * many bytes (the RX slot holds header and packet), and every packet written
 * gets one (txHeader()): the stack reads and writes it (stack/wire/virtio-net-hdr.ts).
 */
export interface TunOffload {
  /** Bytes of virtio-net header in front of every packet; 0: plain packets, nothing offloaded. */
  readonly vnetHdrLen: number;
  /** TUN_F_CSUM: packets may come with partial transport checksums, and ours may go partial. */
  readonly csum: boolean;
  /** TUN_F_TSO4/6: TCP segments of up to 64 KiB each way whatever the MTU (the kernel splits or coalesces). */
  readonly tso4: boolean;
  readonly tso6: boolean;
  /** TUN_F_USO4|USO6 (Linux 6.2+): UDP segmentation offload; the kernel takes both or neither. */
  readonly uso: boolean;
}

export const NO_OFFLOAD: TunOffload = { vnetHdrLen: 0, csum: false, tso4: false, tso6: false, uso: false };

/** What our writes may ask of the kernel: partial checksums, and on top of them TSO per family and USO (both families or neither). */
export interface TxOffload {
  readonly csum: boolean;
  readonly tso4: boolean;
  readonly tso6: boolean;
  /** UDP GSO packets (gso_type UDP_L4): several same-size replies of one flow in one write. */
  readonly uso: boolean;
}

/**
 * The kernel reads any virtio-net header we write (tun_get_user does not look
 * at TUNSETOFFLOAD, which says what we can read); we ask only for what it
 * accepted to hand us, the sign that it knows it.
 */
export function txOffload(o: TunOffload | undefined): TxOffload {
  const csum = o !== undefined && o.vnetHdrLen > 0 && o.csum;
  return { csum, tso4: csum && o.tso4, tso6: csum && o.tso6, uso: csum && o.uso };
}

/** The largest packet a segmentation offload hands over or takes: IPv6 with a 65,535-byte payload. */
export const MAX_GSO_PACKET = 40 + 65535;

export interface TunDevice {
  readonly name: string;
  readonly mtu: number;
  /** Offloads in force; absent or vnetHdrLen 0: none. */
  readonly offload?: TunOffload;
  /** Begin delivering batches. The handler runs on the event loop; slots are reused after it returns. */
  start(onBatch: (batch: RxBatch) => void): void;
  /**
   * A TX slot with room for one packet of up to mtu bytes (with segmentation
   * offload: MAX_GSO_PACKET). Fill it, then commitTx(length).
   */
  txSlot(): Buffer;
  /** With offload: the virtio-net header of the slot txSlot() returned, to fill before commitTx. */
  txHeader?(): Buffer;
  commitTx(length: number): void;
  /** Write every committed packet to the device. Called after each batch and each tick. */
  flushTx(): void;
  close(): void;
}
