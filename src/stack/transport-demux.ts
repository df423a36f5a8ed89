// The transport layer of one received packet: the TCP, UDP or ICMP view is
// pointed at the IP payload, the checksum verified against the addresses, and
// the packet handed on: a TCP segment (its header and options in the one
// reused Segment) to the TCP flows, a UDP datagram with its flow key to the
// layer above, an ICMP message to echo.
import { Drop, type DropCounters } from './drop-counters.js';
import type { Family, Segment, UdpFlowKey, UdpHandler } from './contracts.js';
import type { StackCounters } from './stack-options.js';
import type { IcmpEcho } from './icmp/icmp-echo.js';
import type { TcpFlows } from './tcp/tcp-flows.js';
import { TcpView, transportChecksumOk } from './wire/tcp-view.js';
import { fillSegment, newSegment } from './wire/tcp-options.js';
import { UdpView } from './wire/udp-view.js';

const PROTO_TCP = 6;

/** The one reused UDP flow key. */
class MutableUdpKey implements UdpFlowKey {
  clientIp = 0;
  serverIp = 0;
  clientPort = 0;
  serverPort = 0;
}

export class TransportDemux {
  private readonly tcpView = new TcpView();
  private readonly udpView = new UdpView();
  private readonly udpKey = new MutableUdpKey();
  private readonly seg: Segment = newSegment();

  /**
   * The packet in hand came with the kernel's word for its transport checksum
   * (virtio-net NEEDS_CSUM or DATA_VALID, a TUN with offloads): not summed
   * again. Set by the stack around one input() only; packets from anywhere
   * else (fuzzing, injected, tproxy) are always verified.
   */
  checksumVouched = false;

  /**
   * > 0: the packet in hand is a UDP GSO packet (virtio-net UDP_L4, a client
   * that sent with UDP_SEGMENT): its payload is datagrams of this many bytes,
   * the last maybe shorter, each handed up on its own as the kernel would
   * have split them (Linux __udp_gso_segment). Set like checksumVouched.
   */
  udpGsoSize = 0;

  constructor(
    private readonly flows: TcpFlows,
    private readonly echo: IcmpEcho,
    private readonly udpHandler: UdpHandler | null,
    private readonly drops: DropCounters,
    private readonly counters: StackCounters,
  ) {}

  /** addrSum: both addresses' share of the pseudo-header checksum (addressSum in tcp-view.ts). */
  tcp(buf: Buffer, off: number, len: number, src: number, dst: number, addrSum: number, now: number): void {
    const tcp = this.tcpView;
    const r = tcp.reset(buf, off, len);
    if (r !== 0) return this.drops.count(r);
    if (!this.checksumVouched && !transportChecksumOk(buf, off, len, addrSum, PROTO_TCP)) return this.drops.count(Drop.tcp_bad_checksum);
    const seg = this.seg;
    const optReason = fillSegment(tcp, seg);
    if (optReason !== 0) return this.drops.count(optReason);
    this.flows.segment(src, dst, tcp.srcPort, tcp.dstPort, seg, now);
  }

  udp(buf: Buffer, off: number, len: number, src: number, dst: number, addrSum: number, family: Family, now: number): void {
    const handler = this.udpHandler;
    if (handler === null) return this.drops.count(Drop.udp_unsupported);
    const u = this.udpView;
    const r = u.reset(buf, off, len, addrSum, family, this.checksumVouched);
    if (r !== 0) return this.drops.count(r);
    const key = this.udpKey;
    key.clientIp = src;
    key.serverIp = dst;
    key.clientPort = u.srcPort;
    key.serverPort = u.dstPort;
    if (this.udpGsoSize === 0) return this.datagram(handler, key, buf, u.payloadOffset, u.payloadLength, now);
    // views into the one packet, one per datagram: the layer above copies what it keeps (UdpHandler's contract)
    const size = this.udpGsoSize;
    const end = u.payloadOffset + u.payloadLength;
    let n = 0;
    let at = u.payloadOffset;
    do {
      this.datagram(handler, key, buf, at, Math.min(size, end - at), now);
      n++;
      at += size;
    } while (at < end);
    this.counters.udpGsoPackets++;
    this.counters.udpGsoDatagrams += n;
  }

  private datagram(handler: UdpHandler, key: UdpFlowKey, buf: Buffer, off: number, len: number, now: number): void {
    if (!handler.onDatagram(key, buf, off, len, now)) return this.drops.count(Drop.udp_unsupported);
    this.counters.udpDatagrams++;
  }

  icmp(buf: Buffer, off: number, len: number, src: number, dst: number, addrSum: number): void {
    this.echo.input(buf, off, len, src, dst, addrSum);
  }
}
