// The virtio-net header (struct virtio_net_hdr, 10 bytes, the host's byte
// order: little-endian here) that a TUN opened with IFF_VNET_HDR puts in front
// of every packet it hands over and expects in front of every packet written
// (Linux include/uapi/linux/virtio_net.h; virtio spec 1.2 §5.1.6).
//   flags        NEEDS_CSUM: the transport checksum is partial (only the
//                pseudo-header's sum), to be completed at csum_start +
//                csum_offset; the sender (the local kernel) computed nothing
//                else, so there is nothing wrong to find. DATA_VALID: the
//                kernel already verified it.
//   gso_type     NONE, or TCPV4 / TCPV6 / UDP_L4 (with ECN): a segment of up to
//                64 KiB that the kernel coalesced (read) or will split (write)
//                into gso_size-byte pieces.
//   hdr_len      the headers copied into every piece (IP + TCP with options, or IP + UDP).
//   csum_start, csum_offset: where the sum starts (the transport header) and
//                where it goes (16 in TCP, 6 in UDP).
// Writing ours this way (TSO and checksum offload on write) needs nothing of
// TUNSETOFFLOAD, which says what we can read; we write it only where the
// kernel accepted the matching read offload, the sign it knows them.
export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_UDP_L4 = 5;
export const VNET_GSO_ECN = 0x80;

/** One header read; reused by the caller, never kept. */
export interface VnetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function newVnetHdr(): VnetHdr {
  return { flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 };
}

/** Reads the header at buf[off]; false when fewer than VNET_HDR_LEN bytes are there. */
export function readVnetHdr(buf: Buffer, off: number, len: number, into: VnetHdr): boolean {
  if (len < VNET_HDR_LEN) return false;
  into.flags = buf[off];
  into.gsoType = buf[off + 1];
  into.hdrLen = buf.readUInt16LE(off + 2);
  into.gsoSize = buf.readUInt16LE(off + 4);
  into.csumStart = buf.readUInt16LE(off + 6);
  into.csumOffset = buf.readUInt16LE(off + 8);
  return true;
}

/** A header that asks for nothing: a whole packet, its checksums complete. */
export function writeVnetHdrNone(buf: Buffer, off: number): void {
  buf.fill(0, off, off + VNET_HDR_LEN);
}

/** Every field, little-endian at Linux's offsets. */
export function writeVnetHdr(buf: Buffer, off: number, h: VnetHdr): void {
  buf[off] = h.flags;
  buf[off + 1] = h.gsoType;
  buf.writeUInt16LE(h.hdrLen, off + 2);
  buf.writeUInt16LE(h.gsoSize, off + 4);
  buf.writeUInt16LE(h.csumStart, off + 6);
  buf.writeUInt16LE(h.csumOffset, off + 8);
}

/**
 * The header for a TCP or UDP packet of ours (either family, no extension
 * headers) whose checksum field holds only the pseudo-header's sum:
 * NEEDS_CSUM, the sum to complete from the transport header on (the kernel
 * does, or accepts it as is on local delivery, as from its own stack). With
 * gsoSize > 0 and more payload than that, one segment of up to 64 KiB for the
 * kernel to split into gsoSize-byte pieces (TCPV4/TCPV6, UDP_L4), each with
 * a copy of the headers (hdr_len bytes). Read off the packet just written.
 * True when it asked for segmentation.
 */
export function writeVnetHdrPartial(buf: Buffer, off: number, pkt: Buffer, len: number, gsoSize: number): boolean {
  const v4 = pkt[0] >> 4 === 4;
  const ipLen = v4 ? (pkt[0] & 15) << 2 : 40;
  const tcp = (v4 ? pkt[9] : pkt[6]) === 6;
  const hdrLen = ipLen + (tcp ? (pkt[ipLen + 12] >> 4) << 2 : 8);
  const gso = gsoSize > 0 && len - hdrLen > gsoSize;
  buf[off] = VNET_F_NEEDS_CSUM;
  buf[off + 1] = !gso ? VNET_GSO_NONE : !tcp ? VNET_GSO_UDP_L4 : v4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6;
  buf.writeUInt16LE(hdrLen, off + 2);
  buf.writeUInt16LE(gso ? gsoSize : 0, off + 4);
  buf.writeUInt16LE(ipLen, off + 6);
  buf.writeUInt16LE(tcp ? 16 : 6, off + 8);
  return gso;
}

/**
 * The kernel vouches for the transport checksum: computed by nobody yet
 * (NEEDS_CSUM, from the local stack) or already verified (DATA_VALID).
 * Either way summing it again finds nothing, and for NEEDS_CSUM would
 * wrongly fail (the field holds only the pseudo-header's sum).
 */
export function checksumVouched(h: VnetHdr): boolean {
  return (h.flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID)) !== 0;
}

/** A coalesced (GRO/TSO) segment: larger than the MTU, taken whole. */
export function isGso(h: VnetHdr): boolean {
  return (h.gsoType & ~VNET_GSO_ECN) !== VNET_GSO_NONE;
}

/**
 * What a header says of UDP segmentation (USO, gso_type UDP_L4): 0, not a
 * UDP GSO packet; n > 0, the packet of `len` bytes stands for datagrams of n
 * payload bytes each, the last maybe shorter (a client sent with the
 * UDP_SEGMENT socket option, Linux udp_send_skb); -1, a UDP_L4 header that
 * does not fit the packet (gso_size 0, hdr_len or the checksum's place past
 * its end). hdr_len is only the kernel's hint of how much is linear
 * (virtio_net_hdr_from_skb), not the headers' length: the split reads those
 * off the packet.
 */
export function udpGsoSize(h: VnetHdr, len: number): number {
  if ((h.gsoType & ~VNET_GSO_ECN) !== VNET_GSO_UDP_L4) return 0;
  if (h.gsoSize === 0 || h.hdrLen > len) return -1;
  if ((h.flags & VNET_F_NEEDS_CSUM) !== 0 && h.csumStart + h.csumOffset + 2 > len) return -1;
  return h.gsoSize;
}
