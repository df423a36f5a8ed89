// Fault injection at the device layer, for tests only: loss, duplication,
// reordering and delay with jitter, on the packets the gateway reads (client
// to gateway) and writes (gateway to client). It stands in for netem where
// the kernel has no sch_netem (as on the machine this was built on), and
// covers the gateway-to-client direction without an ifb device.
//
// Enabled by the environment, never by a flag users would find:
//   TUNSTEER_TEST_FAULTS="loss=0.02,dup=0.01,reorder=0.05,delay=5,jitter=2,seed=7"
// optionally prefixed per direction: "rx:loss=0.02;tx:delay=10,jitter=5".
import type { RxBatch, TunDevice, TunOffload } from './tun-device.js';

export interface FaultProfile {
  /** Probability a packet is dropped. */
  loss: number;
  /** Probability a packet is sent twice. */
  dup: number;
  /** Probability a packet is held back and sent after the next ones (by `delay` + 1 ms at least). */
  reorder: number;
  /** Added delay, ms, for every packet (0: none) ... */
  delay: number;
  /** ... plus a uniform random 0..jitter ms (reordering packets whose delays cross). */
  jitter: number;
}

export interface FaultSpec {
  rx?: FaultProfile;
  tx?: FaultProfile;
  seed: number;
}

const ZERO: FaultProfile = { loss: 0, dup: 0, reorder: 0, delay: 0, jitter: 0 };

function parseProfile(text: string): FaultProfile & { seed?: number } {
  const p: FaultProfile & { seed?: number } = { ...ZERO };
  for (const kv of text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [k, v] = kv.split('=');
    const n = Number(v);
    if (!(k in ZERO) && k !== 'seed') throw new Error(`TUNSTEER_TEST_FAULTS: unknown key "${k}"`);
    if (!Number.isFinite(n) || n < 0) throw new Error(`TUNSTEER_TEST_FAULTS: ${k}=${v} is not a number >= 0`);
    (p as unknown as Record<string, number>)[k] = n;
  }
  return p;
}

/** null when the variable is unset or empty. */
export function parseFaultSpec(text: string | undefined): FaultSpec | null {
  if (!text) return null;
  const spec: FaultSpec = { seed: 1 };
  for (const part of text
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(rx|tx):(.*)$/.exec(part);
    const p = parseProfile(m ? m[2] : part);
    if (p.seed !== undefined) spec.seed = p.seed;
    if (!m || m[1] === 'rx') spec.rx = p;
    if (!m || m[1] === 'tx') spec.tx = p;
  }
  return spec;
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

export interface FaultCounters {
  lost: number;
  duplicated: number;
  reordered: number;
  delayed: number;
}

/** Wraps a device; packets that must wait are copied and replayed from a timer. */
export class FaultyTun implements TunDevice {
  readonly counters = { rx: { lost: 0, duplicated: 0, reordered: 0, delayed: 0 }, tx: { lost: 0, duplicated: 0, reordered: 0, delayed: 0 } };
  private readonly random: () => number;
  private onBatch: ((b: RxBatch) => void) | null = null;
  private closed = false;

  constructor(
    private readonly inner: TunDevice,
    private readonly spec: FaultSpec,
  ) {
    this.random = rng(spec.seed);
  }

  get name(): string {
    return this.inner.name;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get offload(): TunOffload | undefined {
    return this.inner.offload;
  }
  /** Bytes of virtio-net header in front of each packet: a packet held back keeps its header. */
  private get hdr(): number {
    return this.inner.offload?.vnetHdrLen ?? 0;
  }

  start(onBatch: (batch: RxBatch) => void): void {
    this.onBatch = onBatch;
    const rx = this.spec.rx;
    if (!rx) return this.inner.start(onBatch);
    this.inner.start((batch) => {
      // keep the batch's own slots for the packets that pass now, in order
      const out: { slots: Buffer[]; lengths: Uint32Array; count: number } = { slots: [], lengths: new Uint32Array(batch.count * 2), count: 0 };
      for (let i = 0; i < batch.count; i++) {
        const pkt = batch.slots[i].subarray(0, batch.lengths[i]);
        this.fate(
          rx,
          this.counters.rx,
          pkt,
          (p) => {
            out.slots.push(p);
            out.lengths[out.count++] = p.length;
          },
          (p, ms) => this.deliverLater(p, ms),
        );
      }
      if (out.count > 0) onBatch(out);
    });
  }

  txSlot(): Buffer {
    return this.inner.txSlot();
  }

  txHeader(): Buffer {
    return this.inner.txHeader!();
  }

  commitTx(length: number): void {
    const tx = this.spec.tx;
    if (!tx) return this.inner.commitTx(length);
    const slot = this.inner.txSlot();
    // the header sits right before the slot in the same slab: one view holds both
    const pkt = Buffer.from(slot.buffer, slot.byteOffset - this.hdr, this.hdr + length);
    let committed = false;
    this.fate(
      tx,
      this.counters.tx,
      pkt,
      (p) => {
        if (!committed && p === pkt) {
          committed = true;
          this.inner.commitTx(length);
        } else {
          this.writeNow(p);
        }
      },
      (p, ms) => this.writeLater(p, ms),
    );
  }

  flushTx(): void {
    this.inner.flushTx();
  }

  close(): void {
    this.closed = true;
    this.inner.close();
  }

  /** Decides a packet's fate: now (maybe twice), later (copied), or never. */
  private fate(p: FaultProfile, c: FaultCounters, pkt: Buffer, now: (b: Buffer) => void, later: (b: Buffer, ms: number) => void): void {
    const r = this.random;
    if (r() < p.loss) {
      c.lost++;
      return;
    }
    const copies = r() < p.dup ? 2 : 1;
    if (copies === 2) c.duplicated++;
    for (let k = 0; k < copies; k++) {
      const held = r() < p.reorder;
      const ms = p.delay + (p.jitter > 0 ? r() * p.jitter : 0) + (held ? 1 + r() * 4 : 0);
      if (held) c.reordered++;
      if (ms <= 0) now(k === 0 ? pkt : Buffer.from(pkt));
      else {
        c.delayed++;
        later(Buffer.from(pkt), ms);
      }
    }
  }

  private deliverLater(p: Buffer, ms: number): void {
    setTimeout(() => {
      if (this.closed || !this.onBatch) return;
      const lengths = new Uint32Array([p.length]);
      this.onBatch({ slots: [p], lengths, count: 1 });
      this.inner.flushTx();
    }, ms);
  }

  /** p: the header (if any) and the packet. */
  private writeNow(p: Buffer): void {
    const hdr = this.hdr;
    const slot = this.inner.txSlot();
    if (hdr > 0) p.copy(this.inner.txHeader!(), 0, 0, hdr);
    p.copy(slot, 0, hdr);
    this.inner.commitTx(p.length - hdr);
  }

  private writeLater(p: Buffer, ms: number): void {
    setTimeout(() => {
      if (this.closed) return;
      this.writeNow(p);
      this.inner.flushTx();
    }, ms);
  }
}
