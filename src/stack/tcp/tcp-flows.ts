// The stack's TCP flows: the table keyed by 4-tuple, the segment dispatch
// (an existing flow, a SYN or cookie ACK for the SYN gate, else a RST per
// RFC 9293 §3.10.7.1), segments out, and a flow's end. Operations on a flow
// run through the FlowRunner; admission is the SYN gate's.
import { ACK, FIN, RST, SYN, type CloseReason, type ConnectHandler, type OutSegment, type Segment } from '../contracts.js';
import { Drop, type DropCounters } from '../drop-counters.js';
import { FlowTable } from '../flow-table.js';
import type { StackClock } from '../stack-clock.js';
import type { StackCounters } from '../stack-options.js';
import type { StackOutput } from '../stack-output.js';
import type { IcmpErrors } from '../icmp/icmp-errors.js';
import type { MemoryBudget } from '../memory-budget.js';
import { isIp6Id, type Ip6Table } from '../wire/ip6-table.js';
import { writeTcpRst, writeTcpSegment } from '../wire/segment-writer.js';
import type { FlowRunner } from './flow-runner.js';
import type { SynGate } from './syn-gate.js';
import type { TcpFlow, TcpFlowHost } from './tcp-flow.js';

export class TcpFlows implements TcpFlowHost {
  private readonly table = new FlowTable<TcpFlow>();
  /** Open flows per destination address: a fake IP in use must not be recycled. */
  private readonly perServer = new Map<number, number>();
  /** Set once the gate exists (it needs the flows too). */
  gate!: SynGate;

  constructor(
    private readonly runner: FlowRunner,
    private readonly budget: MemoryBudget<TcpFlow>,
    private readonly out: StackOutput,
    private readonly icmp: IcmpErrors,
    private readonly ip6: Ip6Table,
    private readonly clock: StackClock,
    private readonly drops: DropCounters,
    private readonly counters: StackCounters,
    private readonly onConnect: ConnectHandler,
    readonly streamHighWaterMark: number,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /** One segment from a client (seg is the demux's reused object, valid during the call). */
  segment(src: number, dst: number, sport: number, dport: number, seg: Segment, now: number): void {
    let flow = this.table.get4(src, dst, sport, dport);
    const flags = seg.flags;
    if (flow !== undefined && (flags & (SYN | ACK | RST)) === SYN) {
      const st = flow.conn.state;
      // A fresh SYN on a connection that is finishing reuses the 4-tuple (RFC 6191 in spirit).
      if (st === 'TIME-WAIT' || st === 'CLOSED') {
        this.forget(flow, 'time-wait-expired');
        flow = undefined;
      } else if (flow.pending && flow.halfOpen && seg.seq !== flow.clientIsn) {
        // Another ISN for a flow still waiting for its upstream: the client gave up on that
        // attempt (it never had our SYN-ACK, so it loses nothing). Ignored as a "repeated SYN",
        // this one went unanswered until the old dial ended (issue 14: no SYN-ACK within 3 s).
        this.runner.dropSilently(flow);
        if (!flow.closed) this.forget(flow, 'aborted');
        flow = undefined;
      }
    }
    if (flow === undefined) {
      if ((flags & (SYN | ACK | RST | FIN)) === SYN) return this.gate.syn(src, dst, sport, dport, seg, now);
      if ((flags & (SYN | ACK | RST)) === ACK && this.gate.cookieAck(src, dst, sport, dport, seg, now)) return;
      this.drops.count(Drop.no_flow);
      if ((flags & RST) === 0) this.replyRst(src, dst, sport, dport, seg);
      return;
    }
    this.counters.tcpSegments++;
    this.runner.receive(flow, seg, now);
  }

  /** Files a new flow (its IPv6 ids already held) and hands it to the layer above. */
  add(flow: TcpFlow): void {
    this.table.set4(flow.clientIp, flow.serverIp, flow.clientPort, flow.serverPort, flow);
    this.perServer.set(flow.serverIp, (this.perServer.get(flow.serverIp) ?? 0) + 1);
    this.counters.tcpActive++;
    this.counters.tcpPending++;
    this.counters.tcpTotal++;
    this.runner.schedule(flow);
    this.budget.account(flow);
    try {
      this.onConnect(flow);
    } catch {
      // The layer above failed to take it: left pending, the flow would ignore the client's
      // SYN retransmissions until the backlog expired it (20 s). It goes; the next SYN retries.
      this.drops.count(Drop.internal_error);
      if (flow.pending && !flow.closed) this.runner.dropSilently(flow);
    }
  }

  /** Called once per flow when its connection closes (or a new SYN takes over its 4-tuple). */
  forget(flow: TcpFlow, _reason: CloseReason): void {
    if (flow.closed) return;
    flow.closed = true;
    this.table.delete4(flow.clientIp, flow.serverIp, flow.clientPort, flow.serverPort);
    const n = (this.perServer.get(flow.serverIp) ?? 1) - 1;
    if (n > 0) this.perServer.set(flow.serverIp, n);
    else this.perServer.delete(flow.serverIp);
    this.counters.tcpActive--;
    this.gate.forgotten(flow);
    if (flow.pending) {
      flow.pending = false;
      this.counters.tcpPending--;
    }
    this.counters.retransmits += flow.conn.retransmits;
    this.budget.release(flow);
    if (isIp6Id(flow.clientIp)) {
      this.ip6.release(flow.clientIp);
      this.ip6.release(flow.serverIp);
    }
  }

  emit(flow: TcpFlow, seg: OutSegment): void {
    const out = this.out;
    const partial = out.partial;
    const len = writeTcpSegment(out.slot(), flow.serverIp, flow.clientIp, flow.serverPort, flow.clientPort, seg, this.ip6, partial);
    if (partial) out.commitPartial(len, seg.pieceSize ?? 0);
    else out.commit(len);
    if (seg.flags & RST) this.counters.rstSent++;
  }

  /** RFC 9293 §3.10.7.1: answer a segment that has no connection. */
  replyRst(src: number, dst: number, sport: number, dport: number, seg: Segment): void {
    const slot = this.out.slot();
    let len: number;
    if (seg.flags & ACK) {
      len = writeTcpRst(slot, dst, src, dport, sport, seg.ack, 0, RST, this.ip6);
    } else {
      const segLen = seg.payloadLength + (seg.flags & SYN ? 1 : 0) + (seg.flags & FIN ? 1 : 0);
      len = writeTcpRst(slot, dst, src, dport, sport, 0, (seg.seq + segLen) >>> 0, RST | ACK, this.ip6);
    }
    this.out.commit(len);
    this.counters.rstSent++;
  }

  // ---- TcpFlowHost ----
  addressText(ip: number): string {
    return this.ip6.text(ip);
  }
  accepted(_flow: TcpFlow): void {
    this.counters.tcpPending--;
  }
  unreachable(flow: TcpFlow, net: boolean): void {
    this.icmp.tcpHostUnreachable(flow.clientIp, flow.serverIp, flow.clientPort, flow.serverPort, flow.clientIsn, this.clock.now(), net);
  }
  handshakeDone(flow: TcpFlow): void {
    this.gate.handshakeDone(flow);
  }
  accept(flow: TcpFlow): void {
    this.runner.accept(flow);
  }
  abort(flow: TcpFlow): void {
    this.runner.abort(flow);
  }
  dropSilently(flow: TcpFlow): void {
    this.runner.dropSilently(flow);
  }
  write(flow: TcpFlow, data: Buffer): number {
    return this.runner.write(flow, data);
  }
  consumed(flow: TcpFlow, n: number): void {
    this.runner.consumed(flow, n);
  }
  close(flow: TcpFlow): void {
    this.runner.close(flow);
  }

  // ---- queries, off the packet path ----
  /** Connections to this address are open. */
  hasFlowsTo(ip: number): boolean {
    return (this.perServer.get(ip) ?? 0) > 0;
  }

  forEach(fn: (flow: TcpFlow) => void): void {
    this.table.forEach(fn);
  }

  /** Aborts every connection (RST to each client), e.g. on shutdown. */
  abortAll(): void {
    const all: TcpFlow[] = [];
    this.table.forEach((f) => all.push(f));
    for (const f of all) if (!f.closed) this.runner.abort(f);
  }
}
