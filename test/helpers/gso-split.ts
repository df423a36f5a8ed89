// What the kernel does with a packet we write to a TUN with a virtio-net
// header, for tests without a kernel: NEEDS_CSUM completed, and a TSO segment
// (gso_type TCPV4/TCPV6) split into gso_size pieces with a copy of the
// headers each: sequence numbers advanced, FIN and PSH on the last piece only
// (as tcp_gso_segment), IP lengths and IPv4 ids and checksums per piece, each
// TCP checksum complete; a UDP GSO packet (gso_type UDP_L4, USO) into its
// datagrams the same way, the UDP length and checksum per datagram (as
// __udp_gso_segment). Other packets pass whole.
import { checksum, fold, pseudoSum4 } from '../../src/stack/wire/checksum.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_UDP_L4, VNET_HDR_LEN, newVnetHdr, readVnetHdr } from '../../src/stack/wire/virtio-net-hdr.js';

const FIN = 0x01;
const PSH = 0x08;

/** The pseudo-header sum of a TCP packet in p (IPv4 or IPv6), for its tcpLen. */
function pseudo(p: Buffer, tcpLen: number): number {
  if (p[0] >> 4 === 4) return pseudoSum4(p.readUInt32BE(12), p.readUInt32BE(16), 6, tcpLen);
  let s = 6 + (tcpLen >>> 16) + (tcpLen & 0xffff);
  for (let i = 8; i < 40; i += 2) s += p.readUInt16BE(i);
  return s;
}

/** frame: header + packet as the TUN took it. Returns the packets the kernel would deliver. */
export function kernelSplit(frame: Buffer): Buffer[] {
  const h = newVnetHdr();
  if (!readVnetHdr(frame, 0, frame.length, h)) throw new Error('no virtio-net header');
  const pkt = Buffer.from(frame.subarray(VNET_HDR_LEN));
  const gso = (h.gsoType & ~VNET_GSO_ECN) !== VNET_GSO_NONE;
  if (!gso) {
    if (h.flags & VNET_F_NEEDS_CSUM) {
      let ck = checksum(pkt, h.csumStart, pkt.length - h.csumStart);
      if (ck === 0 && h.csumOffset === 6) ck = 0xffff;
      pkt.writeUInt16BE(ck, h.csumStart + h.csumOffset);
    }
    return [pkt];
  }
  if (!(h.flags & VNET_F_NEEDS_CSUM)) throw new Error('a GSO packet without NEEDS_CSUM');
  if ((h.gsoType & ~VNET_GSO_ECN) === VNET_GSO_UDP_L4) return udpSplit(pkt, h.csumStart, h.gsoSize);
  const t = h.csumStart;
  const hdrLen = h.hdrLen;
  const flags = pkt[t + 13];
  const seq0 = pkt.readUInt32BE(t + 4);
  const out: Buffer[] = [];
  for (let at = hdrLen, k = 0; at < pkt.length; at += h.gsoSize, k++) {
    const n = Math.min(h.gsoSize, pkt.length - at);
    const last = at + n >= pkt.length;
    const p = Buffer.alloc(hdrLen + n);
    pkt.copy(p, 0, 0, hdrLen);
    pkt.copy(p, hdrLen, at, at + n);
    p.writeUInt32BE((seq0 + (at - hdrLen)) >>> 0, t + 4);
    p[t + 13] = last ? flags : flags & ~(FIN | PSH);
    pieceIpHeader(p, pkt, k);
    p.writeUInt16BE(0, t + 16);
    p.writeUInt16BE(checksum(p, t, p.length - t, pseudo(p, p.length - t)), t + 16);
    out.push(p);
  }
  return out;
}

/**
 * A UDP GSO packet's datagrams: the headers (up to the UDP header at u, its 8
 * bytes) copied in front of each gsoSize-byte piece of the payload, the last
 * shorter; IP lengths, IPv4 ids and header checksums, UDP length per
 * datagram, and the checksum completed from the partial one the packet
 * carries, so a wrong partial sum shows as a wrong checksum. Throws where the
 * kernel would refuse the packet.
 */
function udpSplit(pkt: Buffer, u: number, gsoSize: number): Buffer[] {
  const v4 = pkt[0] >> 4 === 4;
  const hdrLen = u + 8;
  if (gsoSize === 0 || pkt.length - hdrLen <= gsoSize) throw new Error(`UDP GSO packet of ${pkt.length - hdrLen} bytes for gso_size ${gsoSize}: __udp_gso_segment refuses it`);
  if (pkt[v4 ? 9 : 6] !== 17) throw new Error('UDP_L4 over something else than UDP');
  if (pkt.readUInt16BE(u + 4) !== pkt.length - u) throw new Error(`UDP length ${pkt.readUInt16BE(u + 4)} is not the whole packet's ${pkt.length - u}`);
  const partial = pkt.readUInt16BE(u + 6);
  const wholeLen = pkt.readUInt16BE(u + 4);
  const out: Buffer[] = [];
  for (let at = hdrLen, k = 0; at < pkt.length; at += gsoSize, k++) {
    const n = Math.min(gsoSize, pkt.length - at);
    const p = Buffer.alloc(hdrLen + n);
    pkt.copy(p, 0, 0, hdrLen);
    pkt.copy(p, hdrLen, at, at + n);
    pieceIpHeader(p, pkt, k);
    // as the kernel: the partial sum's length swapped for this datagram's (csum16_sub, csum16_add), then completed over it
    p.writeUInt16BE(8 + n, u + 4);
    p.writeUInt16BE(fold(partial + (~wholeLen & 0xffff) + 8 + n), u + 6);
    const ck = checksum(p, u, 8 + n);
    p.writeUInt16BE(ck === 0 ? 0xffff : ck, u + 6);
    out.push(p);
  }
  return out;
}

/** Piece k's IP header: its length, and for IPv4 the id advanced by k and the header checksum. */
function pieceIpHeader(p: Buffer, pkt: Buffer, k: number): void {
  if (p[0] >> 4 !== 4) return void p.writeUInt16BE(p.length - 40, 4);
  p.writeUInt16BE(p.length, 2);
  p.writeUInt16BE((pkt.readUInt16BE(4) + k) & 0xffff, 4);
  p.writeUInt16BE(0, 10);
  p.writeUInt16BE(checksum(p, 0, 20), 10);
}
