// UDP replies to clients (the relay's and the gateway DNS's datagrams) into
// the TUN. Each leaves at the end of the event-loop turn, not after its own
// callback (stack-output.ts), so the datagrams node's read loop hands over in
// one turn (up to 32 per socket) leave in one flush. Where the TUN has USO,
// consecutive replies of one flow with the same payload size (the last may be
// shorter) go as one UDP GSO packet: one IP and one UDP header over all their
// payloads, a partial checksum over the whole (as Linux udp_send_skb leaves a
// UDP_SEGMENT send), and a virtio-net header of gso_type UDP_L4 and gso_size
// the datagram size; the kernel splits it back into the datagrams
// (__udp_gso_segment: headers copied, lengths and checksums per datagram).
// The open run is built in a buffer of ours, not in a TX slot: a TCP flush in
// the middle of the turn must not take it half-built.
import { isIp6Id, type Ip6Table } from './wire/ip6-table.js';
import { writeUdpDatagram } from './wire/datagram-writer.js';
import { ipHeaderLength, partialChecksum, writeIpHeader } from './wire/segment-writer.js';
import { MAX_PACKET, type StackOutput } from './stack-output.js';
import type { StackCounters } from './stack-options.js';
import { Drop, type DropCounters } from './drop-counters.js';

/**
 * The most datagrams in one UDP GSO packet: the kernel refuses a packet of
 * more than UDP_MAX_SEGMENTS (virtio_net_hdr_to_skb): 64 for years, 128 in
 * recent kernels, so 64 holds for both.
 */
export const USO_MAX_SEGMENTS = 64;
/** The largest UDP length of a merged packet: 64 KiB less IPv4's header, for both families. */
export const USO_MAX_UDP_LENGTH = 65535 - 20;

export class UdpOutput {
  /** The open run's packet (IP + UDP header + payloads); runLen 0: none open. Only with USO. */
  private readonly run: Buffer;
  private runLen = 0;
  private src = 0;
  private dst = 0;
  private sport = 0;
  private dport = 0;
  /** The run's datagram size (gso_size), and how many datagrams it holds. */
  private size = 0;
  private segs = 0;
  /** Where the UDP header starts (the IP header's length). */
  private u = 0;
  /** The last datagram was shorter than size: nothing may follow it. */
  private ended = false;

  constructor(
    private readonly out: StackOutput,
    private readonly ip6: Ip6Table,
    private readonly counters: StackCounters,
    private readonly drops: DropCounters,
  ) {
    this.run = out.uso ? Buffer.alloc(MAX_PACKET) : Buffer.alloc(0);
    if (out.uso) out.onTurnEnd(() => this.close());
  }

  /** A datagram from (src, sport) to (dst, dport); fragmented when over the MTU. The payload is copied. */
  send(src: number, dst: number, sport: number, dport: number, payload: Buffer, off: number, len: number): void {
    const v6 = isIp6Id(src);
    const total = len + (v6 ? 48 : 28);
    const out = this.out;
    if (total <= out.mtu && out.uso && len > 0) {
      if (this.runLen > 0) {
        if (this.joins(src, dst, sport, dport, len)) return this.append(payload, off, len);
        this.close();
      }
      return this.open(src, dst, sport, dport, payload, off, len);
    }
    this.close(); // what came before it leaves before it
    if (total <= out.mtu) {
      // with checksum offload the kernel sums the payload, not us
      out.commitUdp(writeUdpDatagram(out.slot(), src, dst, sport, dport, payload, off, len, this.ip6, out.partial), out.partial, 0);
      return;
    }
    // Over the MTU: fragmented, as the sending host would. Past IP's own limit it cannot be sent.
    if (total > (v6 ? MAX_PACKET : 65535)) return this.drops.count(Drop.udp_too_big);
    const whole = out.scratch;
    out.sendWhole(whole, writeUdpDatagram(whole, src, dst, sport, dport, payload, off, len, this.ip6), v6, true);
  }

  /** Writes the open run into a TX slot: one datagram as it is, more as one UDP GSO packet. */
  close(): void {
    const n = this.runLen;
    if (n === 0) return;
    this.runLen = 0;
    const b = this.run;
    const u = this.u;
    const ulen = n - u;
    b.writeUInt16BE(ulen, u + 4);
    // partial: the pseudo-header's sum for the whole length; the kernel corrects it per datagram (never 0: RFC 768)
    b.writeUInt16BE(partialChecksum(this.src, this.dst, 17, ulen, this.ip6), u + 6);
    writeIpHeader(b, this.src, this.dst, ulen, 17, this.ip6);
    b.copy(this.out.slot(), 0, 0, n);
    if (this.out.commitUdp(n, true, this.size)) {
      this.counters.udpUsoPackets++;
      this.counters.udpUsoDatagrams += this.segs;
    }
    this.ip6Release();
  }

  private joins(src: number, dst: number, sport: number, dport: number, len: number): boolean {
    return (
      !this.ended &&
      src === this.src &&
      dst === this.dst &&
      sport === this.sport &&
      dport === this.dport &&
      len <= this.size &&
      this.segs < USO_MAX_SEGMENTS &&
      this.runLen - this.u + len <= USO_MAX_UDP_LENGTH
    );
  }

  private append(payload: Buffer, off: number, len: number): void {
    payload.copy(this.run, this.runLen, off, off + len);
    this.runLen += len;
    this.segs++;
    if (len < this.size) this.ended = true;
  }

  private open(src: number, dst: number, sport: number, dport: number, payload: Buffer, off: number, len: number): void {
    const b = this.run;
    const u = ipHeaderLength(src);
    if (u === 40) {
      // the addresses are held until close writes them: a flow that ends in this turn may release its ids
      this.ip6.acquire(src);
      this.ip6.acquire(dst);
    }
    b.writeUInt16BE(sport, u);
    b.writeUInt16BE(dport, u + 2);
    this.src = src;
    this.dst = dst;
    this.sport = sport;
    this.dport = dport;
    this.u = u;
    this.size = len;
    this.segs = 0;
    this.ended = false;
    this.runLen = u + 8;
    this.append(payload, off, len);
    this.out.flushAtTurnEnd();
  }

  private ip6Release(): void {
    if (this.u !== 40) return;
    this.ip6.release(this.src);
    this.ip6.release(this.dst);
  }
}
