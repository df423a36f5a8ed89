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
// a raw ICMP socket made the same way. Rules: reject drops the flow's
// datagrams (counted); anything else is relayed direct, as on the TUN path
// (no SOCKS5 UDP). Idle flows expire; the number of flows is bounded; each
// flow's end is one connection-log line.
import dgram from 'node:dgram';
import { closeSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadTunAddon, type Endpoint, type NativeTunReader } from '../tun/native-addon.js';
import { endpointText } from './proxy-core.js';
import type { UdpFlowEnd } from './tun/udp-sessions.js';

/** Datagrams read per readable wake before yielding to the event loop (the watcher fires again if more wait). */
const RECV_BATCH = 64;
const DNS_IDLE_MS = 10_000;
/** Datagrams held per flow while its socket connects. */
const MAX_PENDING = 16;

export interface TproxyUdpOptions {
  idleMs: number;
  maxFlows: number;
  /** The rules' say on a new flow; reject: its datagrams are dropped. */
  admit?: (src: Endpoint, dst: Endpoint) => { rule: string; action: string };
  onFlowEnd?: (e: TproxyUdpFlowEnd) => void;
  /** A transparent socket failed (its poll reported an error): it reads no more. */
  onError?: (err: Error) => void;
  /** Sends a reply from `from` to `to`: bytes sent, -1 dropped (buffer full); throws on failure. Default: the raw reply socket. Tests replace it. */
  sendReply?: (from: Endpoint, to: Endpoint, msg: Buffer) => number;
  /** Sends ICMP port unreachable from dst to the client, quoting a datagram of udpLength bytes (UDP header included). Default: the raw ICMP socket. */
  sendUnreachable?: (dst: Endpoint, client: Endpoint, udpLength: number) => number;
}

/** A flow's end, as the TUN path's UDP relay reports it (one connection-log line). */
export type TproxyUdpFlowEnd = UdpFlowEnd;

export interface TproxyUdpCounters {
  udpFlows: number;
  udpFlowsTotal: number;
  udpIn: number;
  udpOut: number;
  udpDropped: number;
  udpRejected: number;
  udpNotIntercepted: number;
  udpReplyErrors: number;
  udpUnreachable: number;
}

interface Flow {
  key: string;
  src: Endpoint;
  dst: Endpoint;
  sock: dgram.Socket;
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
  closed: boolean;
}

interface Side {
  family: 4 | 6;
  fd: number;
  replyFd: number;
  icmpFd: number;
  watcher: NativeTunReader | null;
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
  };
  private readonly flows = new Map<string, Flow>();
  private readonly sides: Side[] = [];
  private readonly buf = Buffer.allocUnsafe(65536);
  private localAddresses = new Set<string>();
  private port = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly opts: TproxyUdpOptions,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.flows.size;
  }

  /**
   * The transparent sockets on 0.0.0.0:port and [::]:port (IPv6 only) and a
   * reply socket per family. Needs CAP_NET_ADMIN or CAP_NET_RAW: call this
   * before dropping root.
   */
  listen(port: number): void {
    const addon = loadTunAddon();
    this.port = port;
    this.localAddresses = hostAddresses();
    try {
      for (const [host, family] of [['0.0.0.0', 4], ['::', 6]] as const) {
        const side: Side = { family, fd: -1, replyFd: -1, icmpFd: -1, watcher: null };
        this.sides.push(side);
        side.fd = addon.transparentUdp(host, port, family);
        side.replyFd = addon.udpReplySocket(family);
        side.icmpFd = addon.icmpReplySocket(family);
        side.watcher = addon.watchReadable(side.fd, (_n, err) => {
          if (err) this.opts.onError?.(err);
          else this.drain(side);
        });
        side.watcher.resume();
      }
    } catch (e) {
      this.close();
      throw e;
    }
    this.sweeper = setInterval(() => this.sweep(this.clock()), 1000);
    this.sweeper.unref();
  }

  /** Ends every flow (each logs its line) and closes the sockets; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of this.sides) {
      s.watcher?.close();
      for (const fd of [s.fd, s.replyFd, s.icmpFd]) {
        if (fd < 0) continue;
        try {
          closeSync(fd);
        } catch {
          // already gone
        }
      }
    }
    this.sides.length = 0;
    for (const f of [...this.flows.values()]) this.end(f, 'shutdown');
  }

  /** Expires idle flows (DNS, port 53, after at most 10 s). */
  sweep(now: number): void {
    const expired: Flow[] = [];
    for (const f of this.flows.values()) {
      const idle = f.dst.port === 53 ? Math.min(DNS_IDLE_MS, this.opts.idleMs) : this.opts.idleMs;
      if (now - f.lastActive >= idle) expired.push(f);
    }
    for (const f of expired) this.end(f, 'idle');
  }

  private drain(side: Side): void {
    const addon = loadTunAddon();
    for (let i = 0; i < RECV_BATCH && !this.closed; i++) {
      let d;
      try {
        d = addon.udpRecv(side.fd, this.buf);
      } catch {
        // a per-datagram error (ICMP-reported, ...): that one is lost
        this.counters.udpDropped++;
        continue;
      }
      if (d === null) return;
      this.counters.udpIn++;
      if (d.src === undefined || d.truncated) {
        this.counters.udpDropped++;
        continue;
      }
      this.input(d.src, d.dst, this.buf.subarray(0, d.length));
    }
  }

  /** One datagram from the client src to its original destination dst; payload is only valid during the call. */
  input(src: Endpoint, dst: Endpoint, payload: Buffer): void {
    if (this.closed) return;
    if (dst.port === this.port && this.isLocal(dst.address)) {
      // sent straight to our port, not through TPROXY: relaying it would loop back to us
      this.counters.udpNotIntercepted++;
      return;
    }
    const key = `${src.address}|${src.port}|${dst.address}|${dst.port}`;
    let flow = this.flows.get(key);
    const now = this.clock();
    if (flow === undefined) {
      if (this.flows.size >= this.opts.maxFlows) {
        this.counters.udpDropped++;
        return;
      }
      const verdict = this.opts.admit?.(src, dst) ?? { rule: 'default', action: 'direct' };
      if (verdict.action === 'reject') {
        this.counters.udpRejected++;
        this.counters.udpDropped++;
        return;
      }
      flow = this.open(key, src, dst, now, verdict);
    }
    flow.lastActive = now;
    flow.up += payload.length;
    flow.lastLength = payload.length + 8;
    // a copy: the receive buffer is reused before the send completes
    const copy = Buffer.from(payload);
    if (flow.ready) this.send(flow, copy);
    else if (flow.pending.length < MAX_PENDING) flow.pending.push(copy);
    else this.counters.udpDropped++;
  }

  private send(flow: Flow, data: Buffer): void {
    flow.sock.send(data, (err) => {
      if (err) this.counters.udpDropped++;
    });
  }

  /** An address of this host; the list is read again on a miss (addresses come and go), which only datagrams to our own port pay for. */
  private isLocal(address: string): boolean {
    if (address.startsWith('127.') || this.localAddresses.has(address)) return true;
    this.localAddresses = hostAddresses();
    return this.localAddresses.has(address);
  }

  private open(key: string, src: Endpoint, dst: Endpoint, now: number, verdict: { rule: string; action: string }): Flow {
    const sock = dgram.createSocket({ type: dst.family === 6 ? 'udp6' : 'udp4' });
    const flow: Flow = {
      key, src, dst, sock, ready: false, pending: [], lastLength: 8,
      started: now, lastActive: now, up: 0, down: 0, rule: verdict.rule, action: verdict.action, closed: false,
    };
    this.flows.set(key, flow);
    this.counters.udpFlows++;
    this.counters.udpFlowsTotal++;
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
    return flow;
  }

  private unreachable(flow: Flow): void {
    try {
      const n = this.opts.sendUnreachable
        ? this.opts.sendUnreachable(flow.dst, flow.src, flow.lastLength)
        : this.icmpFrom(flow.dst, flow.src, flow.lastLength);
      if (n < 0) this.counters.udpDropped++;
    } catch {
      this.counters.udpReplyErrors++;
    }
  }

  private icmpFrom(dst: Endpoint, client: Endpoint, udpLength: number): number {
    const side = this.sides.find((s) => s.family === dst.family);
    if (!side) throw new Error(`no IPv${dst.family} ICMP socket`);
    return loadTunAddon().udpPortUnreachable(side.icmpFd, client.address, client.port, dst.address, dst.port, udpLength);
  }

  private reply(flow: Flow, msg: Buffer): void {
    try {
      const n = this.opts.sendReply ? this.opts.sendReply(flow.dst, flow.src, msg) : this.sendFrom(flow.dst, flow.src, msg);
      if (n < 0) this.counters.udpDropped++;
      else this.counters.udpOut++;
    } catch {
      this.counters.udpReplyErrors++;
    }
  }

  private sendFrom(from: Endpoint, to: Endpoint, msg: Buffer): number {
    const side = this.sides.find((s) => s.family === from.family);
    if (!side) throw new Error(`no IPv${from.family} reply socket`);
    return loadTunAddon().udpSendFrom(side.replyFd, msg, from.address, from.port, to.address, to.port);
  }

  private end(flow: Flow, end: string): void {
    if (flow.closed) return;
    flow.closed = true;
    this.flows.delete(flow.key);
    this.counters.udpFlows--;
    try {
      flow.sock.close();
    } catch {
      // already closed
    }
    this.opts.onFlowEnd?.({
      src: endpointText(flow.src),
      dst: endpointText(flow.dst),
      up: flow.up,
      down: flow.down,
      ms: Math.round(this.clock() - flow.started),
      end,
      rule: flow.rule,
      action: flow.action,
    });
  }
}

function hostAddresses(): Set<string> {
  const out = new Set<string>(['::1']);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}
