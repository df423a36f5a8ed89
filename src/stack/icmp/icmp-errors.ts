// ICMP and ICMPv6 errors to clients, within one rate limit (RFC 4443 §2.4 f;
// Linux's icmp_msgs_per_sec is 1000): "fragmentation needed" / "packet too
// big", unreachables for UDP flows and for a SYN whose upstream failed, and
// "administratively prohibited" for IPv6 when it is off.
import { Drop, type DropCounters } from '../drop-counters.js';
import type { UdpFlowKey } from '../contracts.js';
import type { StackCounters } from '../stack-options.js';
import type { StackOutput } from '../stack-output.js';
import { isIp6Id, type Ip6Table } from '../wire/ip6-table.js';
import { ICMP4, ICMP6, writeIcmpError, writeQuotedTcpHeaders, writeQuotedUdpHeaders } from '../wire/datagram-writer.js';

/** Errors sent per second at most, and the burst. */
const ERRORS_PER_SEC = 1000;
const BURST = 50;

export class IcmpErrors {
  private tokens = BURST;
  private refilledAt = 0;
  /** Rebuilt headers quoted by errors sent after the packet is gone. */
  private readonly quote = Buffer.alloc(64);

  constructor(
    private readonly out: StackOutput,
    private readonly ip6: Ip6Table,
    private readonly drops: DropCounters,
    private readonly counters: StackCounters,
    /** Largest packet accepted from the client side: what "too big" announces. */
    private readonly mtu: number,
  ) {}

  /** One error from `from` to `to` quoting quote[qoff, qoff+qlen), within the rate limit. */
  send(from: number, to: number, type: number, code: number, rest: number, quote: Buffer, qoff: number, qlen: number, now: number): void {
    if (this.tokens < BURST) this.tokens = Math.min(BURST, this.tokens + ((now - this.refilledAt) * ERRORS_PER_SEC) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return this.drops.count(Drop.icmp_rate_limited);
    this.tokens--;
    this.counters.icmpErrors++;
    this.out.commit(writeIcmpError(this.out.slot(), from, to, type, code, rest, quote, qoff, qlen, this.ip6));
  }

  /** A packet over the MTU: "fragmentation needed" / "packet too big" carrying our MTU. */
  tooBig(buf: Buffer, offset: number, total: number, from: number, to: number, dontFragment: boolean, now: number): void {
    this.drops.count(Drop.packet_too_big);
    // Without DF an IPv4 router would fragment it on; we take only what fits our MTU, so it is dropped.
    if (!dontFragment) return;
    if (isIp6Id(from)) this.send(from, to, ICMP6.packetTooBig, 0, this.mtu, buf, offset, total, now);
    else this.send(from, to, ICMP4.unreachable, ICMP4.fragNeeded, this.mtu & 0xffff, buf, offset, total, now);
  }

  /** IPv6 is off: every IPv6 packet gets "administratively prohibited", so connects fail at once. */
  prohibited6(from: number, to: number, buf: Buffer, offset: number, total: number, now: number): void {
    this.drops.count(Drop.ipv6_disabled);
    this.send(from, to, ICMP6.unreachable, ICMP6.adminProhibited, 0, buf, offset, total, now);
  }

  portUnreachable(f: UdpFlowKey, now: number): void {
    this.udpError(f, isIp6Id(f.serverIp) ? ICMP6.portUnreachable : ICMP4.portUnreachable, now);
  }

  hostUnreachable(f: UdpFlowKey, now: number): void {
    this.udpError(f, isIp6Id(f.serverIp) ? ICMP6.addressUnreachable : ICMP4.hostUnreachable, now);
  }

  /**
   * The upstream of a connection not yet answered cannot be reached: host unreachable about its SYN
   * (connect: EHOSTUNREACH), or with net, network unreachable / no route (RFC 792, RFC 4443 §3.1 code 0;
   * connect: ENETUNREACH, what the kernel path gives with no route at all).
   */
  tcpHostUnreachable(client: number, server: number, clientPort: number, serverPort: number, clientIsn: number, now: number, net = false): void {
    const v6 = isIp6Id(server);
    const n = writeQuotedTcpHeaders(this.quote, client, server, clientPort, serverPort, clientIsn, this.ip6);
    const code = v6 ? (net ? ICMP6.noRoute : ICMP6.addressUnreachable) : net ? ICMP4.netUnreachable : ICMP4.hostUnreachable;
    this.send(server, client, v6 ? ICMP6.unreachable : ICMP4.unreachable, code, 0, this.quote, 0, n, now);
  }

  private udpError(f: UdpFlowKey, code: number, now: number): void {
    const n = writeQuotedUdpHeaders(this.quote, f.clientIp, f.serverIp, f.clientPort, f.serverPort, 8, this.ip6);
    this.send(f.serverIp, f.clientIp, isIp6Id(f.serverIp) ? ICMP6.unreachable : ICMP4.unreachable, code, 0, this.quote, 0, n, now);
  }
}
