// The userspace TCP/IP stack: IPv4 and IPv6 packets in, packets out, TCP
// connections terminated for any destination routed into the TUN, UDP
// datagrams handed to the layer above, ICMP echo answered and ICMP errors sent
// where TCP and UDP need them. The caller drives it: input() per received
// packet, tick() on a timer, both with the time. This file wires the parts
// and keeps the counters; each part has one job:
//   ip-input → transport-demux → tcp/tcp-flows (tcp/syn-gate for new ones,
//   tcp/flow-runner for every operation) | UdpHandler above, its replies
//   through udp-output | icmp/
// No per-packet allocation on the way in: one reused view per layer, one
// reused Segment, and addresses as numbers (IPv6 ones interned in an Ip6Table).
import type { TunDevice } from '../tun/tun-device.js';
import { parseIpv4 as parseIpv4Text, parseIpv6Into } from '../net/address.js';
import type { AddressIds, ConnectHandler, Family, TcpOptions, UdpFlowKey, UdpPort } from './contracts.js';
import { DropCounters } from './drop-counters.js';
import { MemoryBudget } from './memory-budget.js';
import { IpInput } from './ip-input.js';
import { IpReassembly } from './ip-reassembly.js';
import { TransportDemux } from './transport-demux.js';
import { StackClock } from './stack-clock.js';
import { StackOutput } from './stack-output.js';
import { newCounters, resolveOptions, tcpOptionsFor, type StackCounters, type StackOptions } from './stack-options.js';
import { IcmpErrors } from './icmp/icmp-errors.js';
import { IcmpEcho } from './icmp/icmp-echo.js';
import { FlowRunner } from './tcp/flow-runner.js';
import { SynGate } from './tcp/syn-gate.js';
import { TcpFlows } from './tcp/tcp-flows.js';
import type { TcpFlow } from './tcp/tcp-flow.js';
import { Ip6Table, isIp6Id } from './wire/ip6-table.js';
import { Drop } from './drop-counters.js';
import { UdpOutput } from './udp-output.js';

export type { StackCounters, StackOptions } from './stack-options.js';
export type { ConnectHandler, PendingConnection } from './contracts.js';

export class Stack implements UdpPort {
  readonly opts: StackOptions;
  readonly tcpOpts: TcpOptions;
  /** The same TCP options with the MSS for IPv6's longer header. */
  readonly tcpOpts6: TcpOptions;
  /** Largest packet accepted from the client side. */
  readonly mtu: number;
  readonly drops = new DropCounters();
  readonly counters: StackCounters = newCounters();
  /** IPv6 addresses as numeric ids, shared with the layers above through `addresses`. */
  readonly ip6 = new Ip6Table();
  readonly addresses: AddressIds;
  private readonly clock: StackClock;
  private readonly out: StackOutput;
  private readonly udpOut: UdpOutput;
  private readonly icmp: IcmpErrors;
  private readonly runner: FlowRunner;
  private readonly flows: TcpFlows;
  private readonly gate: SynGate;
  private readonly budget: MemoryBudget<TcpFlow>;
  private readonly ipInput: IpInput;
  private readonly frags: IpReassembly;
  /** Scratch for hasFlowsToAddress. */
  private readonly addr16 = Buffer.alloc(16);

  constructor(dev: TunDevice, onConnect: ConnectHandler, opts: Partial<StackOptions> = {}) {
    this.opts = resolveOptions(opts);
    this.mtu = Math.min(opts.mtu ?? dev.mtu, dev.mtu);
    const { drops, counters, ip6 } = this;
    this.out = new StackOutput(dev, counters);
    // with TSO the TCP core may send segments over the MTU, split by the kernel
    const tcp = tcpOptionsFor(this.mtu, this.opts.tcp, { v4: this.out.tso4, v6: this.out.tso6 });
    this.tcpOpts = tcp.v4;
    this.tcpOpts6 = tcp.v6;
    this.clock = new StackClock(opts.clock);
    this.udpOut = new UdpOutput(this.out, ip6, counters, drops);
    this.icmp = new IcmpErrors(this.out, ip6, drops, counters, this.mtu);
    const budget: MemoryBudget<TcpFlow> = (this.budget = new MemoryBudget(this.opts.memoryBudget, this.opts.memoryFloorPerFlow, counters, (f, blocked, held) => {
      if (blocked) f.stream?.writableAgain();
      if (held > 0) this.runner.consumed(f, held);
    }));
    this.runner = new FlowRunner(this.clock, budget, drops, opts.onSooner ?? null);
    this.flows = new TcpFlows(this.runner, budget, this.out, this.icmp, ip6, this.clock, drops, counters, onConnect, this.opts.streamHighWaterMark);
    this.gate = new SynGate(this.flows, this.runner, budget, this.out, ip6, drops, counters, this.opts, this.tcpOpts, this.tcpOpts6);
    this.flows.gate = this.gate;
    const demux = new TransportDemux(this.flows, new IcmpEcho(this.out, ip6, drops, counters), this.opts.udp ?? null, drops, counters);
    this.frags = new IpReassembly(ip6, drops, counters, this.opts.reassembly);
    this.ipInput = new IpInput(demux, this.frags, this.icmp, ip6, drops, counters, this.mtu, this.opts.ipv6);
    this.addresses = {
      text: (ip) => ip6.text(ip),
      family: (ip): Family => (isIp6Id(ip) ? 6 : 4),
      hold: (ip) => void (isIp6Id(ip) && ip6.acquire(ip)),
      release: (ip) => void (isIp6Id(ip) && ip6.release(ip)),
    };
  }

  /** New admission limits (a reload): they apply from the next SYN on; open connections are kept. */
  setLimits(l: Pick<StackOptions, 'maxConnections' | 'maxHalfOpen' | 'synCookies' | 'memoryBudget'>): void {
    this.opts.maxConnections = l.maxConnections;
    this.opts.maxHalfOpen = l.maxHalfOpen;
    this.opts.synCookies = l.synCookies;
    this.opts.memoryBudget = l.memoryBudget;
    this.budget.setLimit(l.memoryBudget);
  }

  /**
   * One IP packet from the device at `now`. The buffer is only read during
   * the call. offloaded: a TUN with offloads said the local kernel vouches for
   * its transport checksum (it may then be a coalesced segment over the MTU).
   * udpGsoSize (udpGsoSize in wire/virtio-net-hdr.ts): > 0, a UDP GSO packet
   * to hand up as datagrams of that many bytes; -1, a malformed one, dropped.
   */
  input(buf: Buffer, offset: number, length: number, now: number, offloaded = false, udpGsoSize = 0): void {
    this.clock.set(now);
    this.counters.packetsIn++;
    this.counters.bytesIn += length;
    if (udpGsoSize < 0) return this.drops.count(Drop.udp_bad_gso);
    this.ipInput.input(buf, offset, length, now, offloaded, udpGsoSize);
  }

  /** Lets go of closed connections the timer wheel still holds (it drops them lazily, within two turns): call before a full GC. */
  releaseClosed(): number {
    return this.runner.purgeClosed();
  }

  /** Advances timers. Call after each batch and by nextDeadline() (or every few ms). */
  tick(now: number): void {
    this.clock.set(now);
    this.runner.advance(now);
    this.gate.expire(now);
    this.frags.expire(now);
  }

  /**
   * When tick() next has something to do: a connection's timer (to the wheel's
   * 10 ms tick), a half-open connection's or a fragment's timeout. Infinity:
   * nothing, sleep until a packet or onSooner.
   */
  nextDeadline(): number {
    return Math.min(this.runner.nextDeadline(), this.gate.nextDeadline(), this.frags.nextDeadline());
  }

  // ---- UdpPort: datagrams and ICMP errors towards clients ----
  sendUdp(src: number, dst: number, sport: number, dport: number, payload: Buffer, off: number, len: number): void {
    this.udpOut.send(src, dst, sport, dport, payload, off, len);
  }

  sendPortUnreachable(f: UdpFlowKey): void {
    this.icmp.portUnreachable(f, this.clock.now());
  }

  sendHostUnreachable(f: UdpFlowKey): void {
    this.icmp.hostUnreachable(f, this.clock.now());
  }

  // ---- queries and control, off the packet path ----
  /** An address number as text: per connection, never per packet. */
  addressText(ip: number): string {
    return this.ip6.text(ip);
  }

  get connections(): number {
    return this.flows.size;
  }

  /** The last internal errors, for the rate-limited log line of the caller. */
  get internalErrors(): readonly Error[] {
    return this.runner.internalErrors;
  }

  /** Up to `max` connections' variables and timers, for a diagnostic dump. */
  debugFlows(max = 50): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const now = this.clock.now();
    this.flows.forEach((f) => {
      if (out.length >= max) return;
      out.push({
        src: `${this.addressText(f.clientIp)}:${f.clientPort}`,
        dst: `${this.addressText(f.serverIp)}:${f.serverPort}`,
        wheelIn: Math.round(f.wheelDue - now),
        ...f.conn.debugState(now),
      });
    });
    return out;
  }

  /** Connections by TCP state, for the status file (O(connections): call it rarely). */
  tcpStates(): Record<string, number> {
    const out: Record<string, number> = {};
    this.flows.forEach((f) => {
      const k = stateKey(f.conn.state);
      out[k] = (out[k] ?? 0) + 1;
    });
    return out;
  }

  /** Connections to this address are open (a fake IP in use must not be recycled). */
  hasFlowsTo(ip: number): boolean {
    return this.flows.hasFlowsTo(ip);
  }

  /** hasFlowsTo for an address in text, IPv4 or IPv6. */
  hasFlowsToAddress(address: string): boolean {
    const v4 = parseIpv4Text(address);
    if (v4 !== null) return this.hasFlowsTo(v4);
    if (!parseIpv6Into(address, this.addr16, 0)) return false;
    const id = this.ip6.lookup(this.addr16, 0);
    return id >= 0 && this.hasFlowsTo(id);
  }

  /** Aborts every connection (RST to each client), e.g. on shutdown. */
  abortAll(): void {
    this.flows.abortAll();
  }
}

/**
 * The status key of a TCP state, made once per state: tcpStates() runs once a second over every
 * flow, and a fresh string per flow was 1 MB/s of garbage with 10,000 idle connections, enough
 * to keep V8 from ever shrinking its young generation (docs/DECISIONS.md, "Idle RSS, lever by lever").
 */
const STATE_KEYS = new Map<string, string>();
function stateKey(state: string): string {
  let k = STATE_KEYS.get(state);
  if (k === undefined) STATE_KEYS.set(state, (k = `tcp_state_${state.toLowerCase().replace('-', '_')}`));
  return k;
}
