// Why packets were dropped, counted in a typed array: no allocation per drop,
// read by metrics and status off the hot path.
export const Drop = {
  ipv4_truncated: 1,
  ipv4_bad_version: 2,
  ipv4_bad_ihl: 3,
  ipv4_bad_total_length: 4,
  ipv4_bad_checksum: 5,
  /** An IPv4 fragment refused: past 65,535 bytes, a non-final one not a multiple of 8 bytes, or one too many. */
  ipv4_fragment: 6,
  ipv6_truncated: 7,
  tcp_truncated: 8,
  tcp_bad_offset: 9,
  tcp_bad_checksum: 10,
  tcp_bad_option: 11,
  udp_truncated: 12,
  udp_bad_length: 13,
  udp_bad_checksum: 14,
  unknown_protocol: 15,
  udp_unsupported: 16,
  no_flow: 17,
  syn_over_limit: 18,
  internal_error: 19,
  udp_too_big: 20,
  syn_over_memory: 21,
  /** A half-open connection reset to make room in the SYN backlog. */
  syn_backlog_evicted: 22,
  /** A half-open connection reset because its handshake never completed. */
  syn_backlog_timeout: 23,
  ipv6_bad_length: 24,
  /** A malformed extension-header chain or an option that says "discard". */
  ipv6_bad_ext_header: 25,
  /** A routing header with segments left: we are not a router on its path. */
  ipv6_routing_header: 26,
  /** The same for IPv6 (RFC 8200 §4.5), or a Fragment header cut short. */
  ipv6_fragment: 27,
  ipv6_no_next_header: 28,
  /** IPv6 while `ipv6: false`: answered with ICMPv6 administratively prohibited. */
  ipv6_disabled: 29,
  icmp_truncated: 30,
  icmp_bad_checksum: 31,
  /** ICMP types we neither answer nor need (errors from the client, timestamps...). */
  icmp_unsupported: 32,
  /** Larger than the MTU: answered with "fragmentation needed" / "packet too big". */
  packet_too_big: 33,
  /** An ICMP error we would have sent, held back by the rate limit (RFC 4443 §2.4 f). */
  icmp_rate_limited: 34,
  /** A fragment overlapping another of its datagram: the datagram is abandoned (RFC 5722; Linux does the same for IPv4). */
  frag_overlap: 35,
  /** An exact duplicate of a fragment held: dropped, its datagram kept (RFC 8200 §4.5). */
  frag_duplicate: 36,
  /** A fragment of a datagram abandoned for an overlap, until that datagram's timeout (RFC 5722 §4). */
  frag_abandoned: 37,
  /** A datagram whose fragments did not all arrive in time (one per datagram). */
  frag_timeout: 38,
  /** A datagram dropped to keep reassembly within its memory and count bounds (one per datagram). */
  frag_evicted: 39,
  /** A UDP GSO packet (virtio-net gso_type UDP_L4) whose header does not fit it: gso_size 0, lengths past its end, not UDP, or a fragment. */
  udp_bad_gso: 40,
} as const;
export type DropReason = (typeof Drop)[keyof typeof Drop];
/**
 * Counted with the drops but not a verdict on a packet read from the TUN: something the stack
 * would have sent, a connection it reset later (its SYN was counted as handled when it came), or a
 * datagram whose fragments it let go (each was counted as handled when taken). Every packet read,
 * and every datagram reassembled, is one input drop or handled; the fuzz tests check that identity.
 */
export const NOT_INPUT_VERDICTS: readonly (keyof typeof Drop)[] = [
  'udp_too_big',
  'internal_error',
  'icmp_rate_limited',
  'syn_backlog_evicted',
  'syn_backlog_timeout',
  'frag_timeout',
  'frag_evicted',
];
const NAMES: string[] = [];
for (const [k, v] of Object.entries(Drop)) NAMES[v] = k;

export class DropCounters {
  private readonly c = new Uint32Array(NAMES.length);
  count(reason: number): void {
    this.c[reason]++;
  }
  get(reason: number): number {
    return this.c[reason];
  }
  total(): number {
    let t = 0;
    for (let i = 1; i < this.c.length; i++) t += this.c[i];
    return t;
  }
  *entries(): IterableIterator<[string, number]> {
    for (let i = 1; i < this.c.length; i++) yield [NAMES[i], this.c[i]];
  }
}
