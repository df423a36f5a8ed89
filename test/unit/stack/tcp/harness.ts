// A recording sink and a segment builder for driving TcpConnection directly.
import { ACK, DEFAULT_TCP_OPTIONS, FIN, PSH, RST, SYN, type OutSegment, type Segment, type TcpOptions, type TcpSink, type CloseReason } from '../../../../src/stack/contracts.js';
import { TcpConnection } from '../../../../src/stack/tcp/tcp-connection.js';

export { ACK, FIN, PSH, RST, SYN };

export interface Sent {
  flags: number;
  seq: number;
  ack: number;
  window: number;
  mss: number;
  wscale: number;
  sackOk: boolean;
  tsVal: number;
  tsEcr: number;
  sack: number[];
  data: Buffer;
}

export class Recorder implements TcpSink {
  sent: Sent[] = [];
  data: Buffer[] = [];
  events: string[] = [];
  closed: CloseReason[] = [];
  sendSegment(s: OutSegment): void {
    const data = Buffer.alloc(s.payloadLength);
    if (s.payloadLength > 0) s.copyPayload(data, 0);
    this.sent.push({
      flags: s.flags,
      seq: s.seq >>> 0,
      ack: s.ack >>> 0,
      window: s.window,
      mss: s.mss,
      wscale: s.wscale,
      sackOk: s.sackOk,
      tsVal: s.tsVal,
      tsEcr: s.tsEcr,
      sack: Array.from(s.sack.subarray(0, 2 * s.sackCount)),
      data,
    });
  }
  onOpen() {
    this.events.push('open');
  }
  onData(b: Buffer, off: number, len: number) {
    this.data.push(Buffer.from(b.subarray(off, off + len)));
  }
  onPeerFin() {
    this.events.push('peer-fin');
  }
  onWritable() {
    this.events.push('writable');
  }
  onClosed(r: CloseReason) {
    this.closed.push(r);
    this.events.push(`closed:${r}`);
  }
  take(): Sent[] {
    const s = this.sent;
    this.sent = [];
    return s;
  }
  received(): Buffer {
    return Buffer.concat(this.data);
  }
}

export interface SegSpec {
  flags: number;
  seq: number;
  ack?: number;
  window?: number;
  mss?: number;
  wscale?: number;
  sackOk?: boolean;
  tsVal?: number;
  tsEcr?: number;
  data?: Buffer;
}

export function seg(s: SegSpec): Segment {
  const data = s.data ?? Buffer.alloc(0);
  return {
    seq: s.seq >>> 0,
    ack: (s.ack ?? 0) >>> 0,
    flags: s.flags,
    window: s.window ?? 65535,
    mss: s.mss ?? -1,
    wscale: s.wscale ?? -1,
    sackOk: s.sackOk ?? false,
    tsVal: s.tsVal ?? -1,
    tsEcr: s.tsEcr ?? 0,
    sack: new Uint32Array(8),
    sackCount: 0,
    payload: data,
    payloadOffset: 0,
    payloadLength: data.length,
  };
}

export const add = (a: number, n: number) => (a + n) >>> 0;

export function opts(o: Partial<TcpOptions> = {}): TcpOptions {
  return { ...DEFAULT_TCP_OPTIONS, mss: 1000, rcvBuf: 64 * 1024, sndBuf: 64 * 1024, wscale: 0, keepaliveIdle: 0, ...o };
}

/** A passive connection taken to ESTABLISHED: client ISN `irs`, our ISN `iss`. */
export function established(irs: number, iss: number, o: Partial<TcpOptions> = {}, syn: Partial<SegSpec> = {}) {
  const rec = new Recorder();
  const c = TcpConnection.fromSyn(rec, opts(o), iss, seg({ flags: SYN, seq: irs, mss: 1000, ...syn }), 0);
  c.accept(0);
  const synAck = rec.take()[0];
  c.receive(seg({ flags: ACK, seq: add(irs, 1), ack: add(iss, 1), window: syn.wscale !== undefined ? 65535 : 65535 }), 1);
  rec.take();
  return { c, rec, synAck, client: add(irs, 1), server: add(iss, 1) };
}

export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** ISN pairs to run every table with: near zero and near the wrap. */
export const ISNS: [string, number, number][] = [
  ['low', 1000, 5000],
  ['wrap', 0xffffffff - 1000, 0xffffffff - 500],
];
