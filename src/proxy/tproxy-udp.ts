// TPROXY's UDP inbound: nftables hands us datagrams routed through this host,
// addressed elsewhere, on one transparent socket per family (the TCP
// listener's port); each comes with the address the client sent to
// (IP_ORIGDSTADDR). Per flow (client addr:port, original addr:port) one
// ordinary dgram socket, connected to the real destination, relays; its
// replies go back to the client FROM the original address through a raw reply
// socket (IP_TRANSPARENT, made while the data plane is still root: a per-flow
// transparent socket would need CAP_NET_ADMIN/CAP_NET_RAW for each new flow,
// long after the data plane dropped them), and a port unreachable from the
// destination (ECONNREFUSED) goes back as ICMP port unreachable from it, through
// a raw ICMP socket made the same way. Rules: as on the TUN path, a flow's
// first datagrams may be read (a QUIC Initial's SNI) before the rules decide:
// they are held meanwhile (bounded, at most ADMIT_MS); reject drops the flow's
// datagrams (counted); a `proxy` rule's flow goes through its SOCKS5
// upstream (one UDP association per flow, socks5/udp-association.ts, as on
// the TUN path); anything else is relayed direct. Idle flows expire; the number of flows is bounded; each
// flow's end is one connection-log line.
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Endpoint } from '../tun/native-addon.js';
import { endpointText } from './proxy-core.js';
import type { UpstreamProxy } from './upstream-proxies.js';
import { Socks5UdpAssociation } from './socks5/udp-association.js';
import { ownerFields, type OwnerAnswer } from './owner-lookup.js';
import type { TproxyUdpCounters, TproxyUdpOptions, TproxyUdpPending, TproxyUdpVerdict } from './tproxy-udp-contracts.js';
import { TproxyUdpSockets } from './tproxy-udp-sockets.js';

const DNS_IDLE_MS = 10_000;
/** Datagrams held per flow while the rules read it or its socket connects. */
const MAX_PENDING = 16;
/** How long the rules may read a flow's first datagrams before they must decide. */
const ADMIT_MS = 1000;
/** How long a verdict may wait for the flow's owner (a /proc search under load takes longer than a QUIC hello). */
const OWNER_WAIT_MS = 3000;

interface Flow {
  key: string;
  src: Endpoint;
  dst: Endpoint;
  /** The direct socket, or null: the rules have not admitted the flow yet, or an association carries it. */
  sock: dgram.Socket | null;
  assoc: Socks5UdpAssociation | null;
  upstream?: UpstreamProxy;
  /** the rules are still reading the flow's first datagrams */
  deciding: TproxyUdpPending | null;
  ready: boolean;
  pending: Buffer[];
  /** The UDP length of the client's last datagram: an ICMP error quotes it. */
  lastLength: number;
  started: number;
  lastActive: number;
  up: number;
  down: number;
  rule: string;
  action: string;
  proto?: string;
  sni?: string;
  owner?: OwnerAnswer;
  closed: boolean;
}

export class TproxyUdp {
  readonly counters: TproxyUdpCounters = {
    udpFlows: 0,
    udpFlowsTotal: 0,
    udpIn: 0,
    udpOut: 0,
    udpDropped: 0,
    udpRejected: 0,
    udpNotIntercepted: 0,
    udpReplyErrors: 0,
    udpUnreachable: 0,
    udpSocksFlows: 0,
    udpSocksDropped: 0,
  };
  private readonly flows = new Map<string, Flow>();
  private readonly sockets: TproxyUdpSockets;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly opts: TproxyUdpOptions,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.sockets = new TproxyUdpSockets(this.counters, (src, dst, payload) => this.input(src, dst, payload), opts.onError);
  }

  get size(): number {
    return this.flows.size;
  }

  /**
   * Listens on the TPROXY port (both families) and starts expiring idle flows.
   * Needs CAP_NET_ADMIN or CAP_NET_RAW: call this before dropping root.
   */
  listen(port: number): void {
    this.sockets.listen(port);
    this.sweeper = setInterval(() => this.sweep(this.clock()), 1000);
    this.sweeper.unref();
  }

  /** Ends every flow (each logs its line) and closes the sockets; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sockets.close();
    for (const f of [...this.flows.values()]) this.end(f, 'shutdown');
  }

  /** Expires idle flows (DNS, port 53, after at most 10 s); flows read for ADMIT_MS, or waiting OWNER_WAIT_MS for their owner, are decided now. */
  sweep(now: number): void {
    const expired: Flow[] = [];
    const overdue: Flow[] = [];
    for (const f of this.flows.values()) {
      const idle = f.dst.port === 53 ? Math.min(DNS_IDLE_MS, this.opts.idleMs) : this.opts.idleMs;
      // an undecided flow is decided at its bound, never expired before (idle it would end without a verdict)
      if (f.deciding) {
        if (now - f.started >= (f.deciding.awaiting ? OWNER_WAIT_MS : ADMIT_MS)) overdue.push(f);
      } else if (now - f.lastActive >= idle) expired.push(f);
    }
    for (const f of overdue) if (f.deciding && !f.closed) this.admitted(f, f.deciding.next(null) ?? { rule: f.rule, action: 'reject' });
    for (const f of expired) this.end(f, 'idle');
  }

  /** One datagram from the client src to its original destination dst; payload is only valid during the call. */
  input(src: Endpoint, dst: Endpoint, payload: Buffer): void {
    if (this.closed) return;
    if (dst.port === this.sockets.port && this.sockets.isLocal(dst.address)) {
      // sent straight to our port, not through TPROXY: relaying it would loop back to us
      this.counters.udpNotIntercepted++;
      return;
    }
    const key = `${src.address}|${src.port}|${dst.address}|${dst.port}`;
    let flow = this.flows.get(key);
    const now = this.clock();
    let verdict: TproxyUdpVerdict | undefined;
    if (flow === undefined) {
      if (this.flows.size >= this.opts.maxFlows) {
        this.counters.udpDropped++;
        return;
      }
      const r = this.opts.admit?.(src, dst, payload) ?? { rule: 'default', action: 'direct' };
      if (!('next' in r) && r.action === 'reject') {
        this.counters.udpRejected++;
        this.counters.udpDropped++;
        return;
      }
      const f = (flow = this.open(key, src, dst, now));
      if ('next' in r) {
        f.deciding = r;
        r.later?.((v) => {
          if (!f.closed && f.deciding === r) this.admitted(f, v);
        });
      } else verdict = r;
    } else if (flow.deciding) {
      const d = flow.deciding;
      // a full hold forces the verdict, unless it waits for an answer (read after next: this datagram may have started the wait)
      verdict = d.next(payload) ?? (flow.pending.length + 1 >= MAX_PENDING && !d.awaiting ? d.next(null) : undefined);
    }
    flow.lastActive = now;
    flow.up += payload.length;
    flow.lastLength = payload.length + 8;
    // a copy: the receive buffer is reused before the send completes
    const copy = Buffer.from(payload);
    if (flow.ready) this.send(flow, copy);
    else if (flow.pending.length < MAX_PENDING) flow.pending.push(copy);
    else this.counters.udpDropped++;
    if (verdict) this.admitted(flow, verdict);
  }

  /** The rules decided a new flow: rejected (what it held is dropped, no socket ever), or relayed with what it held. */
  private admitted(flow: Flow, v: TproxyUdpVerdict): void {
    flow.deciding = null;
    flow.rule = v.rule;
    flow.action = v.action;
    if (v.proto !== undefined) flow.proto = v.proto;
    if (v.sni !== undefined) flow.sni = v.sni;
    if (v.upstream !== undefined) flow.upstream = v.upstream;
    if (v.owner !== undefined) flow.owner = v.owner;
    if (v.action !== 'reject') return this.connect(flow);
    this.counters.udpRejected++;
    this.counters.udpDropped += flow.pending.length;
    flow.pending = [];
    this.end(flow, 'rejected');
  }

  private send(flow: Flow, data: Buffer): void {
    if (flow.assoc) return flow.assoc.send(data);
    flow.sock!.send(data, (err) => {
      if (err) this.counters.udpDropped++;
    });
  }

  private open(key: string, src: Endpoint, dst: Endpoint, now: number): Flow {
    const flow: Flow = {
      key,
      src,
      dst,
      sock: null,
      assoc: null,
      deciding: null,
      ready: false,
      pending: [],
      lastLength: 8,
      started: now,
      lastActive: now,
      up: 0,
      down: 0,
      rule: 'default',
      action: 'direct',
      closed: false,
    };
    this.flows.set(key, flow);
    this.counters.udpFlows++;
    this.counters.udpFlowsTotal++;
    return flow;
  }

  /** The flow's own socket, connected to the real destination, or its SOCKS5 association; what it held goes out once ready. */
  private connect(flow: Flow): void {
    const { dst } = flow;
    if (flow.upstream) {
      void this.associate(flow, flow.upstream);
      return;
    }
    const sock = (flow.sock = dgram.createSocket({ type: dst.family === 6 ? 'udp6' : 'udp4' }));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (flow.closed) return;
      if (err.code === 'ECONNREFUSED') {
        // the destination answered port unreachable: the client hears the same, from it
        this.counters.udpUnreachable++;
        this.unreachable(flow);
      } else {
        this.end(flow, `error ${err.code ?? err.message}`);
      }
    });
    sock.on('message', (msg, rinfo) => {
      if (flow.closed) return;
      // connected, so only the destination answers; checked all the same
      if (rinfo.port !== dst.port || rinfo.address !== dst.address) return;
      flow.lastActive = this.clock();
      flow.down += msg.length;
      this.reply(flow, msg);
    });
    sock.connect(dst.port, dst.address, () => {
      if (flow.closed) return;
      flow.ready = true;
      for (const p of flow.pending) this.send(flow, p);
      flow.pending = [];
    });
  }

  /** The flow through its SOCKS5 upstream: an association of its own; the upstream failing is the client's port unreachable. */
  private async associate(flow: Flow, upstream: UpstreamProxy): Promise<void> {
    this.counters.udpSocksFlows++;
    let assoc: Socks5UdpAssociation;
    try {
      assoc = await Socks5UdpAssociation.open(
        upstream,
        { host: flow.dst.address, port: flow.dst.port },
        { timeoutMs: this.opts.connectTimeoutMs ?? 10_000 },
        {
          onMessage: (data) => {
            if (flow.closed) return;
            flow.lastActive = this.clock();
            flow.down += data.length;
            this.reply(flow, data);
          },
          onDrop: () => void this.counters.udpSocksDropped++,
          onEnd: (why) => this.end(flow, why),
        },
      );
    } catch (e) {
      if (flow.closed) return;
      this.counters.udpUnreachable++;
      this.unreachable(flow);
      return this.end(flow, `upstream-failed: ${(e as Error).message}`);
    }
    if (flow.closed) return assoc.close();
    flow.assoc = assoc;
    flow.ready = true;
    for (const p of flow.pending) this.send(flow, p);
    flow.pending = [];
  }

  private unreachable(flow: Flow): void {
    try {
      const n = this.opts.sendUnreachable ? this.opts.sendUnreachable(flow.dst, flow.src, flow.lastLength) : this.sockets.portUnreachable(flow.dst, flow.src, flow.lastLength);
      if (n < 0) this.counters.udpDropped++;
    } catch {
      this.counters.udpReplyErrors++;
    }
  }

  private reply(flow: Flow, msg: Buffer): void {
    try {
      const n = this.opts.sendReply ? this.opts.sendReply(flow.dst, flow.src, msg) : this.sockets.sendFrom(flow.dst, flow.src, msg);
      if (n < 0) this.counters.udpDropped++;
      else this.counters.udpOut++;
    } catch {
      this.counters.udpReplyErrors++;
    }
  }

  private end(flow: Flow, end: string): void {
    if (flow.closed) return;
    flow.closed = true;
    this.flows.delete(flow.key);
    this.counters.udpFlows--;
    try {
      flow.sock?.close();
    } catch {
      // already closed
    }
    flow.assoc?.close();
    this.opts.onFlowEnd?.({
      ...(flow.proto !== undefined ? { proto: flow.proto } : {}),
      ...(flow.sni !== undefined ? { sni: flow.sni } : {}),
      src: endpointText(flow.src),
      dst: endpointText(flow.dst),
      up: flow.up,
      down: flow.down,
      ms: Math.round(this.clock() - flow.started),
      end,
      rule: flow.rule,
      action: flow.action,
      ...(flow.upstream ? { via: flow.upstream.name } : {}),
      ...(flow.owner ? ownerFields(flow.owner) : {}),
    });
  }
}
