// A ring of TX slabs (banks) for a writer that works behind the caller's back
// (the native writer thread, tx-thread.c): flushTx() hands the current bank to
// the writer and goes on filling the next. The writer promises that, when its
// submit(bank) returns, the bank after it is free (it waits for room itself:
// backpressure, never a silent drop). No allocation per packet or per flush.
import { TxSlab, type TxSlabOptions, type TxStats } from './packet-pool.js';

/**
 * Takes slots [0, count) of bank (banks are submitted in ring order) and
 * returns how many it accepted; when it returns, bank (bank + 1) % banks may
 * be filled. Throws when the device is unusable: nothing was queued then.
 */
export type BankSubmit = (bank: number, count: number) => number;

/** The TX side a TunDevice needs: TxSlab's shape, over one slab or a ring of them. */
export interface TxQueue {
  txSlot(): Buffer;
  txHeader(): Buffer;
  commitTx(length: number): void;
  flushTx(): number;
  discard(): void;
  readonly pending: number;
  readonly stats: TxStats;
}

export class TxRing implements TxQueue {
  readonly banks: readonly TxSlab[];
  private index = 0;
  private current: TxSlab;
  private autoFlushes = 0;

  constructor(mtu: number, capacity: number, banks: number, submit: BankSubmit, opts: TxSlabOptions = {}) {
    if (!Number.isInteger(banks) || banks < 2 || banks > 64) throw new RangeError(`banks ${banks} not in 2..64`);
    const ring: TxSlab[] = [];
    for (let b = 0; b < banks; b++) ring.push(new TxSlab(mtu, capacity, (_slab, _lengths, count) => submit(b, count), opts));
    this.banks = ring;
    this.current = ring[0];
  }

  get pending(): number {
    return this.current.pending;
  }

  /** The next free slot; a full bank is handed over first, so a TxSlab never flushes itself. */
  txSlot(): Buffer {
    return this.withRoom().txSlot();
  }

  txHeader(): Buffer {
    return this.withRoom().txHeader();
  }

  /** The bank to fill: the current one, or the next once a full one is handed over. */
  private withRoom(): TxSlab {
    if (this.current.pending >= this.current.capacity) {
      this.autoFlushes++;
      this.flushTx();
    }
    return this.current;
  }

  commitTx(length: number): void {
    this.current.commitTx(length);
  }

  /** Hand the current bank to the writer and move to the next (which submit() freed). */
  flushTx(): number {
    const bank = this.current;
    if (bank.pending === 0) return 0;
    // If submit throws, the bank was not queued (its packets count as drops and
    // it is empty again): stay on it, the ring order is unchanged.
    const taken = bank.flushTx();
    this.index = this.index + 1 === this.banks.length ? 0 : this.index + 1;
    this.current = this.banks[this.index];
    return taken;
  }

  discard(): void {
    this.current.discard();
  }

  /** The banks' counters summed (a new object: for stats(), not the hot path). */
  get stats(): TxStats {
    const sum: TxStats = { packets: 0, bytes: 0, drops: 0, flushes: 0, autoFlushes: this.autoFlushes };
    for (const b of this.banks) {
      sum.packets += b.stats.packets;
      sum.bytes += b.stats.bytes;
      sum.drops += b.stats.drops;
      sum.flushes += b.stats.flushes;
      sum.autoFlushes += b.stats.autoFlushes;
    }
    return sum;
  }
}
