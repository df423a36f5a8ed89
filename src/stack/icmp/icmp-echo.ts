// Echo requests get replies from the address they were sent to: the gateway
// answers for every destination routed into the TUN (see DECISIONS "ICMP"),
// in fragments when the request came in fragments.
// ICMP errors and other types from clients are counted and dropped.
import { Drop, type DropCounters } from '../drop-counters.js';
import type { StackCounters } from '../stack-options.js';
import type { StackOutput } from '../stack-output.js';
import type { Ip6Table } from '../wire/ip6-table.js';
import { fold, sumWords } from '../wire/checksum.js';
import { transportChecksumOk } from '../wire/tcp-view.js';
import { ICMP4, ICMP6, writeEchoReply } from '../wire/datagram-writer.js';

const PROTO_ICMP6 = 58;

export class IcmpEcho {
  constructor(
    private readonly out: StackOutput,
    private readonly ip6: Ip6Table,
    private readonly drops: DropCounters,
    private readonly counters: StackCounters,
  ) {}

  /** One ICMP message at buf[off, off+len); addrSum is -1 for ICMP over IPv4 (no pseudo-header). */
  input(buf: Buffer, off: number, len: number, src: number, dst: number, addrSum: number): void {
    if (len < 8) return this.drops.count(Drop.icmp_truncated);
    const ok = addrSum < 0 ? fold(sumWords(buf, off, len, 0)) === 0xffff : transportChecksumOk(buf, off, len, addrSum, PROTO_ICMP6);
    if (!ok) return this.drops.count(Drop.icmp_bad_checksum);
    if (buf[off] !== (addrSum < 0 ? ICMP4.echoRequest : ICMP6.echoRequest)) return this.drops.count(Drop.icmp_unsupported);
    this.counters.icmpEchoReplies++;
    if (len + (addrSum < 0 ? 20 : 40) <= this.out.mtu) return this.out.commit(writeEchoReply(this.out.slot(), dst, src, buf, off, len, this.ip6));
    // a reassembled request: the reply goes in fragments, as the host asked would send it
    const whole = this.out.scratch;
    this.out.sendWhole(whole, writeEchoReply(whole, dst, src, buf, off, len, this.ip6), addrSum >= 0);
  }
}
