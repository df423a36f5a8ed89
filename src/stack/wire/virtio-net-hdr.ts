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
