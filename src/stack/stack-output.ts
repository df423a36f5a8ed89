// Packets out to the device: a TX slot is filled, committed and counted; the
// device is flushed once after the current batch or callback (a microtask), so
// every packet one event produced leaves in one write. UDP replies wait for
// the end of the event-loop turn instead (setImmediate: the check phase right
// after the I/O callbacks), so the datagrams node's read loop hands over in
// one turn leave in one flush, merged where the TUN has USO (udp-output.ts).
// A packet larger than the device's MTU (a UDP reply, an echo reply) is
// written whole into a scratch buffer and sent as fragments, as the sending
// host would.
// With a virtio-net header (a TUN with offloads) every packet gets one: a
// zero one for a complete packet, or NEEDS_CSUM (and a TSO segment's GSO
// fields) for one whose checksum the kernel completes (commitPartial).
import { randomFillSync } from 'node:crypto';
import { txOffload, type TunDevice } from '../tun/tun-device.js';
import type { StackCounters } from './stack-options.js';
import { fragmentPayload, writeFragment } from './wire/fragment-writer.js';
import { writeVnetHdrNone, writeVnetHdrPartial } from './wire/virtio-net-hdr.js';

/** The largest packet we build: 65,535 bytes of IPv4, or an IPv6 header and 65,535 bytes of payload. */
export const MAX_PACKET = 40 + 65535;

export class StackOutput {
  private flushQueued = false;
  private scratchBuf: Buffer | null = null;
  /** IPv6 fragment identification: a counter from a random start (RFC 7739 §5.1). */
  private fragId6 = randomFillSync(new Uint32Array(1))[0];
  private readonly flush = () => {
    this.flushQueued = false;
    this.dev.flushTx();
  };
  /** A flush at the end of this turn is armed (setImmediate). */
  private turnQueued = false;
  /** What must be committed before that flush (UDP replies still being merged). */
  private turnEnd: (() => void) | null = null;
  private readonly endTurn = () => {
    this.turnEnd?.(); // its commits find turnQueued still set: no second setImmediate
    this.turnQueued = false;
    this.dev.flushTx();
  };

  /** Packets carry a virtio-net header. */
  private readonly vnet: boolean;
  /**
   * TCP and UDP packets may go with a partial checksum (commitPartial): the
   * kernel accepted checksum offload (TUN_F_CSUM), so it also takes ours.
   */
  readonly partial: boolean;
  /** TCP segments over the MTU, split by the kernel (TSO), per family. */
  readonly tso4: boolean;
  readonly tso6: boolean;
  /** Same-size UDP replies of one flow may go as one UDP GSO packet (gso_type UDP_L4) for the kernel to split. */
  readonly uso: boolean;

  constructor(
    private readonly dev: TunDevice,
    private readonly counters: StackCounters,
  ) {
    this.vnet = (dev.offload?.vnetHdrLen ?? 0) > 0 && dev.txHeader !== undefined;
    const tx = txOffload(dev.offload);
    this.partial = this.vnet && tx.csum;
    this.tso4 = this.partial && tx.tso4;
    this.tso6 = this.partial && tx.tso6;
    this.uso = this.partial && tx.uso;
  }

  /** Called once at the end of each turn that armed the turn's flush, before it. */
  onTurnEnd(fn: () => void): void {
    this.turnEnd = fn;
  }

  /** Arms the end-of-turn flush (and onTurnEnd) without a packet committed yet. */
  flushAtTurnEnd(): void {
    if (this.turnQueued) return;
    this.turnQueued = true;
    setImmediate(this.endTurn);
  }

  /** The device's MTU: the largest packet a slot holds. */
  get mtu(): number {
    return this.dev.mtu;
  }

  /** The slot to write the next packet into (the same one until commit). */
  slot(): Buffer {
    return this.dev.txSlot();
  }

  /** Where to build a packet that will not fit a slot (then sendWhole it). */
  get scratch(): Buffer {
    return (this.scratchBuf ??= Buffer.alloc(MAX_PACKET));
  }

  /**
   * A whole packet of len bytes: into a slot as it is when it fits the MTU,
   * else as fragments. later: a UDP reply, flushed at the end of the turn.
   */
  sendWhole(whole: Buffer, len: number, v6: boolean, later = false): void {
    const mtu = this.dev.mtu;
    if (len <= mtu) {
      whole.copy(this.slot(), 0, 0, len);
      return this.commit(len, later);
    }
    const hl = v6 ? 40 : 20;
    const payload = len - hl;
    const step = fragmentPayload(mtu, v6);
    const id = v6 ? (this.fragId6 = (this.fragId6 + 1) >>> 0) : 0;
    this.counters.packetsFragmented++;
    for (let at = 0; at < payload; at += step) {
      const chunk = Math.min(step, payload - at);
      this.commit(writeFragment(this.slot(), whole, at, chunk, at + chunk < payload, v6, id), later);
      this.counters.fragmentsOut++;
    }
  }

  /** The packet in the slot is complete (its checksums computed). later: flushed at the end of the turn. */
  commit(len: number, later = false): void {
    if (this.vnet) writeVnetHdrNone(this.dev.txHeader!(), 0);
    this.count(len, later);
  }

  /**
   * The TCP or UDP packet in the slot has a partial checksum (only when
   * `partial`); with a payload over gsoSize > 0 it is a segment for the
   * kernel to split into gsoSize-byte pieces (TSO).
   */
  commitPartial(len: number, gsoSize: number): void {
    if (writeVnetHdrPartial(this.dev.txHeader!(), 0, this.dev.txSlot(), len, gsoSize)) this.counters.segmentsOffloaded++;
    this.count(len);
  }

  /**
   * A UDP reply in the slot, flushed at the end of the turn: complete, or
   * with a partial checksum (only when `partial`); gsoSize > 0 and more
   * payload than that: a UDP GSO packet for the kernel to split into
   * datagrams of gsoSize bytes (only when `uso`). True when it is one.
   */
  commitUdp(len: number, partial: boolean, gsoSize: number): boolean {
    let gso = false;
    if (partial) gso = writeVnetHdrPartial(this.dev.txHeader!(), 0, this.dev.txSlot(), len, gsoSize);
    else if (this.vnet) writeVnetHdrNone(this.dev.txHeader!(), 0);
    this.count(len, true);
    return gso;
  }

  private count(len: number, later = false): void {
    this.dev.commitTx(len);
    this.counters.packetsOut++;
    this.counters.bytesOut += len;
    if (later) this.flushAtTurnEnd();
    else if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
  }
}
