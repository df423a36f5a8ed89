// The IP layer of one received packet: the IPv4 or IPv6 view validates the
// header once; link chatter (neighbour discovery, MLD, router solicitations)
// is ignored, IPv6 refused when it is off, packets over our MTU answered with
// "too big", fragments reassembled (ip-reassembly.ts), and the transport
// payload handed to the demux with its addresses as numbers (IPv6 interned
// for the duration of the call).
import { Drop, type DropCounters } from './drop-counters.js';
import type { StackCounters } from './stack-options.js';
import type { IcmpErrors } from './icmp/icmp-errors.js';
import type { IpReassembly } from './ip-reassembly.js';
import type { TransportDemux } from './transport-demux.js';
import { Ipv4View } from './wire/ipv4-view.js';
import { Ipv6View } from './wire/ipv6-view.js';
import type { Ip6Table } from './wire/ip6-table.js';
import { addressSum } from './wire/tcp-view.js';

const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ICMP6 = 58;

export class IpInput {
  private readonly ip4 = new Ipv4View();
  private readonly ip6View = new Ipv6View();

  /** Largest packet taken while the kernel vouches for the one in hand: a GRO/TSO segment of up to 64 KiB. */
  private limit: number;

  constructor(
    private readonly demux: TransportDemux,
    private readonly frags: IpReassembly,
    private readonly icmp: IcmpErrors,
    private readonly ip6: Ip6Table,
    private readonly drops: DropCounters,
    private readonly counters: StackCounters,
    /** Largest packet accepted from the client side. */
    private readonly mtu: number,
    private readonly ipv6: boolean,
  ) {
    this.limit = mtu;
  }

  /**
   * offloaded: the TUN's virtio-net header says the local kernel vouches for
   * the transport checksum, and a coalesced segment (GRO/TSO) may be larger
   * than the MTU: it is taken whole, not answered "too big". udpGsoSize > 0:
   * the header says UDP_L4 segmentation, the packet is datagrams of that
   * many bytes each (USO), split by the demux; anything but unfragmented
   * UDP under such a header is dropped.
   */
  input(buf: Buffer, offset: number, length: number, now: number, offloaded = false, udpGsoSize = 0): void {
    if (!offloaded && udpGsoSize === 0) return this.input1(buf, offset, length, now);
    this.demux.checksumVouched = offloaded;
    this.demux.udpGsoSize = udpGsoSize;
    this.limit = 65535 + 40;
    try {
      this.input1(buf, offset, length, now);
    } finally {
      this.demux.checksumVouched = false;
      this.demux.udpGsoSize = 0;
      this.limit = this.mtu;
    }
  }

  private input1(buf: Buffer, offset: number, length: number, now: number): void {
    if (length < 1) return this.drops.count(Drop.ipv4_truncated);
    const version = buf[offset] >> 4;
    if (version === 4) return this.input4(buf, offset, length, now);
    if (version === 6) return this.input6(buf, offset, length, now);
    this.drops.count(Drop.ipv4_bad_version);
  }

  private input4(buf: Buffer, offset: number, length: number, now: number): void {
    const ip = this.ip4;
    const reason = ip.reset(buf, offset, length);
    if (reason !== 0) return this.drops.count(reason);
    if (this.demux.udpGsoSize !== 0 && (ip.isFragment || ip.protocol !== PROTO_UDP)) return this.drops.count(Drop.udp_bad_gso);
    if (ip.totalLength > this.limit) return this.icmp.tooBig(buf, offset, ip.totalLength, ip.dst, ip.src, (buf[offset + 6] & 0x40) !== 0, now);
    if (ip.isFragment) {
      const whole = this.frags.add4(buf, offset, ip.headerLength, ip.totalLength, now);
      if (whole === null) return;
      // a header we built: it validates; the datagram may be larger than our MTU
      ip.reset(whole, 0, whole.length);
      return this.transport4(whole, 0, now);
    }
    this.transport4(buf, offset, now);
  }

  /** The upper layer of the IPv4 packet the view points at. */
  private transport4(buf: Buffer, offset: number, now: number): void {
    const ip = this.ip4;
    const proto = ip.protocol;
    const src = ip.src;
    const dst = ip.dst;
    if (proto === PROTO_TCP) return this.demux.tcp(buf, ip.payloadOffset, ip.payloadLength, src, dst, addressSum(buf, offset, 4), now);
    if (proto === PROTO_UDP) return this.demux.udp(buf, ip.payloadOffset, ip.payloadLength, src, dst, addressSum(buf, offset, 4), 4, now);
    if (proto === PROTO_ICMP) return this.demux.icmp(buf, ip.payloadOffset, ip.payloadLength, src, dst, -1);
    this.drops.count(Drop.unknown_protocol);
  }

  private input6(buf: Buffer, offset: number, length: number, now: number): void {
    const ip = this.ip6View;
    const reason = ip.reset(buf, offset, length);
    if (reason !== 0) return this.drops.count(reason);
    const proto = ip.protocol;
    // Router solicitations, MLD reports, neighbour discovery: the kernel's chatter on any new link.
    if (ip.dstIsMulticast || (proto === PROTO_ICMP6 && ip.payloadLength > 0 && isLinkLocalIcmp6(buf[ip.payloadOffset]))) {
      this.counters.ndIgnored++;
      return;
    }
    if (this.demux.udpGsoSize !== 0 && (ip.isFragment || proto !== PROTO_UDP)) return this.drops.count(Drop.udp_bad_gso);
    const total = ip.payloadOffset + ip.payloadLength - offset;
    const src = this.ip6.intern(buf, ip.srcOffset);
    const dst = this.ip6.intern(buf, ip.dstOffset);
    try {
      if (!this.ipv6) return this.icmp.prohibited6(dst, src, buf, offset, total, now);
      if (total > this.limit) return this.icmp.tooBig(buf, offset, total, dst, src, true, now);
      if (ip.isFragment) {
        const whole = this.frags.add6(buf, offset, ip.fragOffset, ip.fragNextAt, ip.payloadOffset + ip.payloadLength, src, dst, now);
        if (whole === null) return;
        const r = ip.reset(whole, 0, whole.length);
        if (r !== 0) return this.drops.count(r);
        // a fragment inside a reassembled packet is not something anyone sends
        if (ip.isFragment) return this.drops.count(Drop.ipv6_fragment);
        return this.transport6(whole, 0, src, dst, now);
      }
      this.transport6(buf, offset, src, dst, now);
    } finally {
      this.ip6.release(src);
      this.ip6.release(dst);
    }
  }

  /** The upper layer of the IPv6 packet the view points at (its addresses held by the caller). */
  private transport6(buf: Buffer, offset: number, src: number, dst: number, now: number): void {
    const ip = this.ip6View;
    const proto = ip.protocol;
    const asum = addressSum(buf, offset, 6);
    if (proto === PROTO_TCP) return this.demux.tcp(buf, ip.payloadOffset, ip.payloadLength, src, dst, asum, now);
    if (proto === PROTO_UDP) return this.demux.udp(buf, ip.payloadOffset, ip.payloadLength, src, dst, asum, 6, now);
    if (proto === PROTO_ICMP6) return this.demux.icmp(buf, ip.payloadOffset, ip.payloadLength, src, dst, asum);
    this.drops.count(Drop.unknown_protocol);
  }
}

/** ICMPv6 types of the link itself (RFC 4861 ND, RFC 3810 MLD): never for a proxied destination. */
function isLinkLocalIcmp6(type: number): boolean {
  return (type >= 130 && type <= 137) || type === 143;
}
