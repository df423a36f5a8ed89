// UDP relay for the TUN stack: the table of client flows (client ip:port →
// destination ip:port), the rules' verdict on each new one, what a flow holds
// until its way out is open, idle expiry, and the end of a flow with its log
// record. The way out, a connected socket or a SOCKS5 association, is opened
// in udp-upstream.ts; replies return to the client with the original
// addresses. The number of flows is bounded. The stack hands datagrams up
// through its UdpHandler contract and offers its UdpPort for the way back;
// addresses are the stack's numbers (a flow holds its two).
import { performance } from 'node:perf_hooks';
import { FlowTable } from '../../stack/flow-table.js';
import { hostPort } from '../../net/address.js';
import type { UdpFlowKey, UdpHandler, UdpPort } from '../../stack/contracts.js';
import { ownerFields } from '../owner-lookup.js';
import { UdpFlow } from './udp-flow.js';
import { openUpstream, type UpstreamRelay } from './udp-upstream.js';
import { DEFAULT_UDP_OPTIONS, type AdmitVerdict, type UdpCounters, type UdpFlowEnd, type UdpSessionOptions } from './udp-session-types.js';

export type { UdpFlowKey } from '../../stack/contracts.js';
export type { UdpFlowEnd } from './udp-session-types.js';

export class UdpSessions implements UdpHandler {
  readonly opts: UdpSessionOptions;
  readonly counters: UdpCounters = { udpFlows: 0, udpFlowsTotal: 0, udpIn: 0, udpOut: 0, udpDropped: 0, udpUnreachable: 0, udpSocksFlows: 0, udpSocksDropped: 0 };
  private readonly flows = new FlowTable<UdpFlow>();
  private lastSweep = 0;
  /** What a flow's socket or association calls back (udp-upstream.ts). */
  private readonly relay: UpstreamRelay;

  constructor(
    private readonly out: UdpPort,
    opts: Partial<UdpSessionOptions> = {},
    private readonly onFlowEnd?: (e: UdpFlowEnd) => void,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.opts = { ...DEFAULT_UDP_OPTIONS, ...opts };
    this.relay = {
      opts: this.opts,
      out,
      counters: this.counters,
      deliver: (f, m) => this.deliver(f, m),
      ready: (f) => this.ready(f),
      close: (f, end) => this.close(f, end),
    };
  }

  private text(ip: number): string {
    return this.out.addresses.text(ip);
  }

  get size(): number {
    return this.flows.size;
  }

  /** One datagram from the client; the key and payload are views valid only during the call. */
  onDatagram(key: UdpFlowKey, buf: Buffer, off: number, len: number, now: number): boolean {
    const src = key.clientIp;
    const dst = key.serverIp;
    const sport = key.clientPort;
    const dport = key.serverPort;
    this.counters.udpIn++;
    if (this.opts.blockQuic && dport === 443) {
      this.counters.udpDropped++;
      this.counters.udpUnreachable++;
      this.out.sendPortUnreachable(key);
      return true;
    }
    let flow = this.flows.get4(src, dst, sport, dport);
    let verdict: AdmitVerdict | undefined;
    if (flow === undefined) {
      if (this.flows.size >= this.opts.maxFlows) {
        this.counters.udpDropped++;
        return true;
      }
      const r = this.opts.admit?.(key, buf.subarray(off, off + len));
      if (r && 'next' in r) {
        const f = (flow = this.open(src, dst, sport, dport, now, null));
        f.deciding = r;
        r.later?.((v) => {
          if (!f.closed && f.deciding === r) this.admitted(f, v);
        });
      } else if (r?.action === 'reject') {
        this.counters.udpDropped++;
        this.counters.udpUnreachable++;
        this.out.sendPortUnreachable(key);
        return true;
      } else {
        flow = this.open(src, dst, sport, dport, now, r ?? { rule: 'default', action: 'direct' });
      }
    } else if (flow.deciding) {
      const d = flow.deciding;
      // a full hold forces the verdict, unless it waits for an answer (read after next: this datagram may have started the wait)
      verdict = d.next(buf.subarray(off, off + len)) ?? (flow.pending.length + 1 >= this.opts.maxPending && !d.awaiting ? d.next(null) : undefined);
    }
    flow.lastActive = now;
    const copy = Buffer.allocUnsafe(len); // the kernel may keep it until the send completes
    buf.copy(copy, 0, off, off + len);
    flow.up += len;
    if (flow.ready) {
      this.send(flow, copy);
    } else if (flow.pending.length < this.opts.maxPending) {
      flow.pending.push(copy);
    } else {
      this.counters.udpDropped++;
    }
    if (verdict) this.admitted(flow, verdict);
    return true;
  }

  /** An undecided flow is decided: rejected (port unreachable, no socket ever), or relayed with what it held. */
  private admitted(flow: UdpFlow, v: AdmitVerdict): void {
    flow.deciding = null;
    this.note(flow, v);
    if (v.action !== 'reject') return openUpstream(this.relay, flow);
    this.counters.udpDropped += flow.pending.length;
    this.counters.udpUnreachable++;
    flow.pending = [];
    this.out.sendPortUnreachable(flow);
    this.close(flow, 'rejected');
  }

  private note(flow: UdpFlow, v: AdmitVerdict): void {
    flow.rule = v.rule;
    flow.action = v.action;
    flow.verdict = v;
  }

  /** A new flow; with a verdict (it is decided) its socket opens at once. */
  private open(src: number, dst: number, sport: number, dport: number, now: number, verdict: AdmitVerdict | null): UdpFlow {
    const flow = new UdpFlow(src, dst, sport, dport, now);
    this.flows.set4(src, dst, sport, dport, flow);
    this.counters.udpFlows++;
    this.counters.udpFlowsTotal++;
    this.out.addresses.hold(src);
    this.out.addresses.hold(dst);
    if (verdict) {
      this.note(flow, verdict);
      openUpstream(this.relay, flow);
    }
    return flow;
  }

  private send(flow: UdpFlow, payload: Buffer): void {
    if (flow.assoc) flow.assoc.send(payload);
    else flow.socket!.send(payload);
  }

  /** A reply from the destination (a view, valid during the call) goes to the client from the address it sent to. */
  private deliver(flow: UdpFlow, msg: Buffer): void {
    if (flow.closed) return;
    flow.lastActive = this.clock();
    flow.down += msg.length;
    this.counters.udpOut++;
    this.out.sendUdp(flow.serverIp, flow.clientIp, flow.serverPort, flow.clientPort, msg, 0, msg.length);
  }

  private ready(flow: UdpFlow): void {
    flow.ready = true;
    for (const p of flow.pending) this.send(flow, p);
    flow.pending = [];
  }

  /** When sweep() next does something: a second after the last, while any flow is open (Infinity: none). */
  nextSweep(): number {
    return this.flows.size === 0 ? Infinity : this.lastSweep + 1000;
  }

  /** Expires idle flows; cheap to call often (works at most once a second). */
  sweep(now: number): void {
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    const expired: UdpFlow[] = [];
    const overdue: UdpFlow[] = [];
    this.flows.forEach((f) => {
      const idle = f.serverPort === 53 ? this.opts.dnsIdleMs : this.opts.idleMs;
      // an undecided flow is decided at its bound, never expired before (idle it would end without a verdict, its datagrams unsent)
      if (f.deciding) {
        if (now - f.started >= (f.deciding.awaiting ? this.opts.ownerWaitMs : this.opts.admitMs)) overdue.push(f);
      } else if (now - f.lastActive >= idle) expired.push(f);
    });
    for (const f of expired) this.close(f, 'idle');
    // the rules waited long enough for more of these flows: they decide on what came
    for (const f of overdue) if (f.deciding && !f.closed) this.admitted(f, f.deciding.next(null) ?? { rule: f.rule, action: 'reject' });
  }

  /**
   * Closes the flows whose socket is bound to one of these addresses (the
   * uplink's address changed: a bound socket cannot change its source); the
   * client's next datagram opens a new flow. Returns how many.
   */
  closeBoundTo(addresses: ReadonlySet<string>, end: string): number {
    const stale: UdpFlow[] = [];
    this.flows.forEach((f) => {
      try {
        const bound = f.assoc ? f.assoc.localAddress() : f.socket?.address().address;
        if (bound !== undefined && addresses.has(bound)) stale.push(f);
      } catch {
        // not bound yet: it binds the current address
      }
    });
    for (const f of stale) this.close(f, end);
    return stale.length;
  }

  closeAll(): void {
    const all: UdpFlow[] = [];
    this.flows.forEach((f) => all.push(f));
    for (const f of all) this.close(f, 'shutdown');
  }

  private close(flow: UdpFlow, end: string): void {
    if (flow.closed) return;
    flow.closed = true;
    this.flows.delete4(flow.clientIp, flow.serverIp, flow.clientPort, flow.serverPort);
    this.counters.udpFlows--;
    try {
      flow.socket?.close();
    } catch {
      // already closed
    }
    flow.assoc?.close();
    const src = hostPort(this.text(flow.clientIp), flow.clientPort);
    const dst = hostPort(this.text(flow.serverIp), flow.serverPort);
    this.out.addresses.release(flow.clientIp);
    this.out.addresses.release(flow.serverIp);
    this.onFlowEnd?.({
      src,
      dst,
      up: flow.up,
      down: flow.down,
      ms: Math.round(this.clock() - flow.started),
      end,
      rule: flow.rule,
      action: flow.action,
      ...(flow.verdict?.proto !== undefined ? { proto: flow.verdict.proto } : {}),
      ...(flow.verdict?.sni !== undefined ? { sni: flow.verdict.sni } : {}),
      ...(flow.verdict?.upstream ? { via: flow.verdict.upstream.name } : {}),
      ...(flow.verdict?.owner ? ownerFields(flow.verdict.owner) : {}),
    });
  }
}
