// Contract: reset() validates the fixed IPv6 header (RFC 8200 §3) and walks the
// extension-header chain to the upper layer: hop-by-hop (first only) and
// destination options are skipped after their options are checked, a routing
// header with segments left 0 is skipped (§4.4). A Fragment header (§4.5) ends
// the walk: fragOffset says where it is, the caller reassembles, and the
// reassembled packet is walked again; an atomic fragment (offset 0, no more
// fragments, RFC 6946) is walked through as if unfragmented. Anything else
// that is not an upper layer (a routing header to follow, ESP/AH, no next
// header) is a counted drop. Afterwards the getters cannot fail. Addresses
// stay in the packet: src/dst give their offsets, the caller interns them.
import { Drop } from '../drop-counters.js';

export const IPV6_HEADER = 40;
const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const DEST_OPTS = 60;
const NO_NEXT = 59;
/** More than this many extension headers is not a packet anyone sends. */
const MAX_EXT_HEADERS = 8;

export class Ipv6View {
  private b: Buffer = Buffer.alloc(0);
  private o = 0;
  private end = 0;
  private up = 0;
  private proto = 0;
  /** Extension headers skipped on the last packet. */
  extHeaders = 0;
  /** Offset of the Fragment header, -1 when the packet is not a fragment. */
  fragOffset = -1;
  /** Offset of the next-header byte that names the Fragment header (to rewrite once reassembled). */
  fragNextAt = -1;

  reset(b: Buffer, off: number, len: number): number {
    if (len < IPV6_HEADER) return Drop.ipv6_truncated;
    if (b[off] >> 4 !== 6) return Drop.ipv6_truncated;
    const plen = (b[off + 4] << 8) | b[off + 5];
    // A zero payload length means a jumbogram (RFC 2675): never on a TUN.
    if (plen === 0 || IPV6_HEADER + plen > len) return Drop.ipv6_bad_length;
    const end = off + IPV6_HEADER + plen;
    let next = b[off + 6];
    let nextAt = off + 6;
    let p = off + IPV6_HEADER;
    let n = 0;
    this.fragOffset = -1;
    for (;;) {
      if (next === HOP_BY_HOP || next === DEST_OPTS || next === ROUTING) {
        if (next === HOP_BY_HOP && n > 0) return Drop.ipv6_bad_ext_header; // §4.3: only right after the header
        if (++n > MAX_EXT_HEADERS || p + 8 > end) return Drop.ipv6_bad_ext_header;
        const hl = (b[p + 1] + 1) << 3;
        if (p + hl > end) return Drop.ipv6_bad_ext_header;
        if (next === ROUTING) {
          if (b[p + 3] !== 0) return Drop.ipv6_routing_header; // segments left: we are not a router on its path
        } else if (!optionsOk(b, p + 2, p + hl)) {
          return Drop.ipv6_bad_ext_header;
        }
        next = b[p];
        nextAt = p;
        p += hl;
        continue;
      }
      if (next === FRAGMENT) {
        if (p + 8 > end) return Drop.ipv6_fragment;
        if ((b.readUInt16BE(p + 2) & 0xfff9) === 0) {
          // an atomic fragment (RFC 6946): offset 0, no more fragments (the reserved bits ignored)
          if (++n > MAX_EXT_HEADERS) return Drop.ipv6_bad_ext_header;
          next = b[p];
          nextAt = p;
          p += 8;
          continue;
        }
        this.fragOffset = p;
        this.fragNextAt = nextAt;
        break;
      }
      if (next === NO_NEXT) return Drop.ipv6_no_next_header;
      break;
    }
    this.b = b;
    this.o = off;
    this.end = end;
    this.up = p;
    this.proto = next;
    this.extHeaders = n;
    return 0;
  }
  /** A fragment, to reassemble before the upper layer can be read. */
  get isFragment() {
    return this.fragOffset >= 0;
  }
  /** The upper-layer protocol after the extension headers (6, 17, 58, or unknown; 44 for a fragment). */
  get protocol() {
    return this.proto;
  }
  get payloadOffset() {
    return this.up;
  }
  get payloadLength() {
    return this.end - this.up;
  }
  /** Offset of the fixed header, of the source and of the destination address. */
  get headerOffset() {
    return this.o;
  }
  get srcOffset() {
    return this.o + 8;
  }
  get dstOffset() {
    return this.o + 24;
  }
  get hopLimit() {
    return this.b[this.o + 7];
  }
  /** Multicast destination (ff00::/8): router solicitations, MLD reports and the like. */
  get dstIsMulticast() {
    return this.b[this.o + 24] === 0xff;
  }
}

/**
 * TLV options of hop-by-hop and destination-options headers (RFC 8200 §4.2):
 * unknown options whose type says "skip" (top bits 00) are fine, Pad1/PadN and
 * router alert (MLD sets it) are known; any other unknown option means discard.
 */
function optionsOk(b: Buffer, p: number, end: number): boolean {
  while (p < end) {
    const type = b[p];
    if (type === 0) {
      p++;
      continue;
    }
    if (p + 2 > end) return false;
    const next = p + 2 + b[p + 1];
    if (next > end) return false;
    if (type !== 1 && type !== 5 && type >> 6 !== 0) return false;
    p = next;
  }
  return true;
}
