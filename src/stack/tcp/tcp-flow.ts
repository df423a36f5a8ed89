// One TCP flow of the stack: the 4-tuple and the bookkeeping around its
// TcpConnection (backlog, budget, timer wheel). It wears three thin faces,
// each only delegating: the connection's TcpSink (segments out, events to
// the stream), the stream's ConnectionPort (app calls into the connection)
// and the PendingConnection the layer above answers. Addresses are the
// stack's numbers; their text is made once, when first asked.
import type { Duplex } from 'node:stream';
import type { CloseReason, Endpoint, Family, OutSegment, PendingConnection, TcpSink } from '../contracts.js';
import type { BudgetedFlow } from '../memory-budget.js';
import { isIp6Id } from '../wire/ip6-table.js';
import type { TcpConnection } from './tcp-connection.js';
import { TcpStream, type ConnectionPort } from './tcp-stream.js';

/** What a flow needs from the stack around it (tcp-flows.ts implements it). */
export interface TcpFlowHost {
  readonly streamHighWaterMark: number;
  addressText(ip: number): string;
  /** Segments out to the client. */
  emit(flow: TcpFlow, seg: OutSegment): void;
  /** The layer above took the connection: it no longer counts as pending. */
  accepted(flow: TcpFlow): void;
  /** Tell the client its destination (net: its network) cannot be reached (ICMP about its SYN). */
  unreachable(flow: TcpFlow, net: boolean): void;
  handshakeDone(flow: TcpFlow): void;
  /** The connection closed: the flow leaves the table. */
  forget(flow: TcpFlow, reason: CloseReason): void;
  /** The operations, each run with the clock and the re-entry guard (flow-runner.ts). */
  accept(flow: TcpFlow): void;
  abort(flow: TcpFlow): void;
  dropSilently(flow: TcpFlow): void;
  write(flow: TcpFlow, data: Buffer): number;
  consumed(flow: TcpFlow, n: number): void;
  close(flow: TcpFlow): void;
}

let nextConnId = 1;

export class TcpFlow implements TcpSink, ConnectionPort, PendingConnection, BudgetedFlow {
  readonly id = nextConnId++;
  conn!: TcpConnection;
  stream: TcpStream | null = null;
  /** Not yet answered by the layer above. */
  pending = true;
  closed = false;
  /** The earliest deadline filed on the timer wheel. */
  wheelDue = Infinity;
  /** consumed() calls that arrived while the connection was busy. */
  deferredConsumed = 0;
  /** Written, waiting for the runner's push (a microtask). */
  pushQueued = false;
  accounted = 0;
  budgetHeldConsumed = 0;
  budgetBlocked = false;
  /** Handshake not complete; bornAt orders the SYN backlog. */
  halfOpen = true;
  bornAt = 0;
  /** The client's initial sequence number: an ICMP error about its SYN must quote it. */
  clientIsn = 0;
  private srcEp: Endpoint | null = null;
  private dstEp: Endpoint | null = null;
  private written = 0;

  constructor(
    private readonly host: TcpFlowHost,
    /** Client address/port (the packet's source) and the address it dialled. */
    readonly clientIp: number,
    readonly serverIp: number,
    readonly clientPort: number,
    readonly serverPort: number,
  ) {}

  get family(): Family {
    return isIp6Id(this.clientIp) ? 6 : 4;
  }
  get src(): Endpoint {
    return (this.srcEp ??= { family: this.family, address: this.host.addressText(this.clientIp), port: this.clientPort });
  }
  get dst(): Endpoint {
    return (this.dstEp ??= { family: this.family, address: this.host.addressText(this.serverIp), port: this.serverPort });
  }
  get bufferedBytes(): number {
    return this.conn.bufferedBytes;
  }

  // ---- PendingConnection (the layer above) ----
  accept(): Duplex {
    if (this.closed) throw new Error('client connection already gone');
    if (!this.pending) throw new Error('already accepted');
    this.pending = false;
    this.host.accepted(this);
    this.stream = new TcpStream(this, this.host.streamHighWaterMark);
    this.host.accept(this);
    return this.stream;
  }
  reject(): void {
    if (!this.closed) this.host.abort(this);
  }
  unreachable(net = false): void {
    if (this.closed) return;
    if (this.pending && this.halfOpen) {
      // The client still waits for its SYN-ACK: tell it the host (or its network) cannot be reached, as a router would.
      this.host.unreachable(this, net);
      this.host.dropSilently(this);
      return;
    }
    this.host.abort(this);
  }
  /** Bytes relayed: delivered from the client, and accepted for the client. */
  counters() {
    return { up: this.conn.bytesReceived, down: this.written };
  }

  // ---- ConnectionPort (from the stream) ----
  write(data: Buffer): number {
    if (this.closed) return 0;
    const n = this.host.write(this, data);
    this.written += n;
    return n;
  }
  consumed(n: number): void {
    if (!this.closed) this.host.consumed(this, n);
  }
  close(): void {
    if (!this.closed) this.host.close(this);
  }
  abort(): void {
    if (!this.closed) this.host.abort(this);
  }

  // ---- TcpSink (from the connection) ----
  sendSegment(seg: OutSegment): void {
    this.host.emit(this, seg);
  }
  onOpen(): void {
    this.host.handshakeDone(this);
  }
  onData(data: Buffer, offset: number, length: number): void {
    this.stream?.deliver(data, offset, length);
  }
  onPeerFin(): void {
    this.stream?.peerFin();
  }
  onWritable(): void {
    this.stream?.writableAgain();
  }
  onClosed(reason: CloseReason): void {
    this.host.forget(this, reason);
    this.stream?.connectionClosed(reason);
  }
}
