// The edge between one TcpConnection and the rest of Node: a half-close aware
// Duplex. Backpressure both ways (GUIDE §6):
//  - client → us: bytes are reported consumed (re-opening the TCP window) only
//    while our readable buffer is under its high-water mark, so a slow upstream
//    closes the client's window instead of growing memory;
//  - us → client: write() accepts what fits in the connection's send buffer; the
//    rest waits, and the writable side pushes back on whoever pipes into us.
import { Duplex } from 'node:stream';
import type { CloseReason } from '../contracts.js';

/** What the stream may ask of its connection; the stack supplies the clock and flushing. */
export interface ConnectionPort {
  /** Queue bytes for the client; returns how many fit. The buffer is kept by reference. */
  write(data: Buffer): number;
  /** The app took n delivered bytes. */
  consumed(n: number): void;
  /** FIN after queued data. */
  close(): void;
  /** RST. */
  abort(): void;
}

export class ResetError extends Error {
  readonly code: string;
  constructor(reason: CloseReason) {
    super(reason === 'reset-by-peer' ? 'connection reset by client' : `connection ${reason}`);
    this.code = reason === 'timeout' ? 'ETIMEDOUT' : 'ECONNRESET';
  }
}

export class TcpStream extends Duplex {
  /** Delivered bytes the stream machinery has not yet made room for. */
  private held = 0;
  private blockedChunk: Buffer | null = null;
  private blockedCb: ((err?: Error | null) => void) | null = null;
  private connGone = false;

  constructor(
    private readonly port: ConnectionPort,
    highWaterMark = 256 * 1024,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
  }

  // ---- events from the connection (called by the stack's sink) ----

  /** In-order bytes from the client; the view is only valid now, so copy. */
  deliver(view: Buffer, offset: number, length: number): void {
    const copy = Buffer.allocUnsafe(length);
    view.copy(copy, 0, offset, offset + length);
    if (this.push(copy)) this.port.consumed(length);
    else this.held += length;
  }

  peerFin(): void {
    this.push(null);
  }

  /** The connection's send buffer has room again. */
  writableAgain(): void {
    if (this.blockedChunk) queueMicrotask(() => this.retryBlocked());
  }

  connectionClosed(reason: CloseReason): void {
    this.connGone = true;
    if (reason === 'fin' || reason === 'time-wait-expired') {
      // Orderly: both FINs are through. Data still in our readable buffer is
      // still delivered; the Duplex closes itself once both sides ended.
      if (!this.readableEnded) this.push(null);
      if (this.blockedCb) this.failBlocked(new ResetError('aborted'));
      return;
    }
    this.destroy(new ResetError(reason));
  }

  // ---- the parts of net.Socket that Node's HTTP server calls ----
  // Idle and keepalive timing belong to the TCP connection (its keepalive and
  // RTO), and Nagle does not apply: these are deliberate no-ops.
  setTimeout(_ms: number, _cb?: () => void): this {
    return this;
  }
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }
  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this;
  }

  // ---- Duplex implementation ----

  override _read(): void {
    if (this.held > 0 && !this.connGone) {
      const n = this.held;
      this.held = 0;
      this.port.consumed(n);
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.connGone) return cb(new ResetError('aborted'));
    const n = this.port.write(chunk);
    if (n === chunk.length) return cb();
    this.blockedChunk = n === 0 ? chunk : chunk.subarray(n);
    this.blockedCb = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.connGone) this.port.close();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // autoDestroy after both sides ended is orderly: the connection still
    // delivers what it queued and its FIN. Anything else is an abort (RST).
    const orderly = err === null && this.readableEnded && this.writableFinished;
    if (!this.connGone && !orderly) {
      this.connGone = true;
      this.port.abort();
    }
    if (this.blockedCb) this.failBlocked(err ?? new ResetError('aborted'));
    cb(err);
  }

  private retryBlocked(): void {
    const chunk = this.blockedChunk;
    const cb = this.blockedCb;
    if (!chunk || !cb) return;
    if (this.connGone) return this.failBlocked(new ResetError('aborted'));
    const n = this.port.write(chunk);
    if (n === chunk.length) {
      this.blockedChunk = null;
      this.blockedCb = null;
      cb();
    } else if (n > 0) {
      this.blockedChunk = chunk.subarray(n);
    }
  }

  private failBlocked(err: Error): void {
    const cb = this.blockedCb;
    this.blockedChunk = null;
    this.blockedCb = null;
    cb?.(err);
  }
}
