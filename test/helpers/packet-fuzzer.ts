// A seeded generator of malformed (and some well-formed) IPv4 packets for the
// stack: TCP (random flags, bad options, bad data offsets, bad checksums,
// truncation, segments on live flows), UDP (bad lengths, bad checksums), DNS
// queries to the gateway's resolver (garbage names, compression loops, bad
// counts, truncation), ICMP, other protocols, random bytes, bad IP header
// fields (version, IHL, total length, checksum, fragments, options), and IPv6
// packets (extension-header chains, some broken; TCP, UDP, ICMPv6, ND).
//
//   const fz = new PacketFuzzer({ seed: 7, dnsAddress: DNS });
//   const len = fz.next(buf);          // one packet in buf[0, len); fz.lastKind says what it is
//   fz.learn(packetTheStackSent);      // optional: SYN-ACKs let later segments land in-window
//
// Same seed, same sequence of packets (as long as the same packets are learned).
import { checksum, fold, pseudoSum4, sumWords } from '../../src/stack/wire/checksum.js';

export const FUZZ_KINDS = ['random_bytes', 'ip_header', 'tcp_malformed', 'tcp_options', 'tcp_flow', 'udp', 'dns', 'icmp', 'other_protocol', 'ipv6'] as const;
export type FuzzKind = (typeof FUZZ_KINDS)[number];

/** Cumulative weights per kind, out of 100. */
const WEIGHTS: [FuzzKind, number][] = [
  ['random_bytes', 6],
  ['ip_header', 12],
  ['tcp_malformed', 16],
  ['tcp_options', 12],
  ['tcp_flow', 17],
  ['udp', 10],
  ['dns', 13],
  ['icmp', 3],
  ['other_protocol', 3],
  ['ipv6', 8],
];

export interface PacketFuzzerOptions {
  seed: number;
  /** Source addresses the packets come from (clients behind the TUN). */
  clients?: number[];
  /** Destinations (test hosts). */
  servers?: number[];
  /** The gateway's resolver: DNS queries go to it, port 53. */
  dnsAddress?: number;
  /** Largest packet generated; default 1500. */
  mtu?: number;
  /** Names that the resolver maps (valid queries for them get answers); default fuzz.example. */
  mappedNames?: string[];
}

const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;
const FIN = 0x01;
const PSH = 0x08;

/** A TCP flow the generator opened with a SYN; segments on it reach the state machine. */
interface LiveFlow {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  /** Next sequence number from the client side. */
  seq: number;
  /** The stack's ISN once a SYN-ACK was learned, else -1. */
  peerIsn: number;
}

const ip4 = (s: string) => s.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);

export class PacketFuzzer {
  /** What the last packet from next() was meant to exercise. */
  lastKind: FuzzKind = 'random_bytes';
  private state: number;
  private readonly clients: number[];
  private readonly servers: number[];
  private readonly dnsAddress: number;
  private readonly mtu: number;
  private readonly names: string[];
  private readonly flows: LiveFlow[] = [];
  private readonly maxFlows = 64;

  constructor(opts: PacketFuzzerOptions) {
    this.state = opts.seed >>> 0 || 0x9e3779b9;
    this.clients = opts.clients ?? [ip4('192.0.2.1'), ip4('192.0.2.77'), ip4('198.51.100.9')];
    this.servers = opts.servers ?? [ip4('203.0.113.10'), ip4('203.0.113.12'), ip4('203.0.113.99')];
    this.dnsAddress = opts.dnsAddress ?? ip4('203.0.113.53');
    this.mtu = opts.mtu ?? 1500;
    this.names = opts.mappedNames ?? ['fuzz.example', 'a.fuzz.example'];
  }

  // ---- randomness (mulberry32: fast, seeded, good enough for fuzzing) ----
  u32(): number {
    let z = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (z ^ (z >>> 14)) >>> 0;
  }
  /** 0 <= n < bound. */
  int(bound: number): number {
    return bound <= 1 ? 0 : this.u32() % bound;
  }
  chance(percent: number): boolean {
    return this.int(100) < percent;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  private fill(b: Buffer, off: number, len: number): void {
    for (let i = 0; i < len; i++) b[off + i] = this.u32() & 0xff;
  }

  /** Writes one packet into `out` (at least mtu + 128 bytes long); returns its length (0..mtu). */
  next(out: Buffer): number {
    const r = this.int(100);
    let acc = 0;
    let kind: FuzzKind = 'random_bytes';
    for (const [k, w] of WEIGHTS) {
      acc += w;
      if (r < acc) {
        kind = k;
        break;
      }
    }
    this.lastKind = kind;
    switch (kind) {
      case 'random_bytes':
        return this.randomBytes(out);
      case 'ip_header':
        return this.badIpHeader(out);
      case 'tcp_malformed':
        return this.tcpMalformed(out);
      case 'tcp_options':
        return this.tcpBadOptions(out);
      case 'tcp_flow':
        return this.tcpOnFlow(out);
      case 'udp':
        return this.udp(out);
      case 'dns':
        return this.dns(out);
      case 'icmp':
        return this.icmp(out);
      case 'other_protocol':
        return this.otherProtocol(out);
      case 'ipv6':
        return this.ipv6(out);
    }
  }

  /**
   * A packet the stack sent (towards a client): a SYN-ACK on one of our live
   * flows tells us its ISN, so later segments carry acceptable ACKs.
   */
  learn(p: Buffer): void {
    if (p.length < 40 || p[0] !== 0x45 || p[9] !== 6) return;
    if ((p[33] & (SYN | ACK)) !== (SYN | ACK)) return;
    const src = p.readUInt32BE(12);
    const dst = p.readUInt32BE(16);
    const sport = p.readUInt16BE(20);
    const dport = p.readUInt16BE(22);
    for (const f of this.flows) {
      if (f.src === dst && f.dst === src && f.sport === dport && f.dport === sport) {
        f.peerIsn = p.readUInt32BE(24);
        return;
      }
    }
  }

  // ---- IP ----

  private src(): number {
    return this.chance(90) ? this.pick(this.clients) : this.u32();
  }
  private dst(): number {
    return this.chance(90) ? this.pick(this.servers) : this.u32();
  }

  /** A valid IPv4 header (IHL 5) for `payloadLen` bytes, checksum set; returns 20. */
  private ipHeader(b: Buffer, proto: number, src: number, dst: number, payloadLen: number): number {
    b[0] = 0x45;
    b[1] = this.chance(90) ? 0 : this.u32() & 0xff;
    b.writeUInt16BE(20 + payloadLen, 2);
    b.writeUInt16BE(this.u32() & 0xffff, 4);
    b.writeUInt16BE(this.chance(80) ? 0x4000 : 0, 6);
    b[8] = this.chance(95) ? 64 : this.int(256);
    b[9] = proto;
    b.writeUInt16BE(0, 10);
    b.writeUInt32BE(src >>> 0, 12);
    b.writeUInt32BE(dst >>> 0, 16);
    b.writeUInt16BE(checksum(b, 0, 20), 10);
    return 20;
  }

  private fixIpChecksum(b: Buffer): void {
    const hl = (b[0] & 0x0f) << 2;
    b.writeUInt16BE(0, 10);
    b.writeUInt16BE(checksum(b, 0, Math.max(20, hl)), 10);
  }

  private randomBytes(b: Buffer): number {
    const len = this.chance(70) ? this.int(80) : this.int(this.mtu + 1);
    this.fill(b, 0, len);
    if (len > 0) {
      const first = this.int(4);
      if (first === 0) b[0] = 0x45;
      else if (first === 1) b[0] = 0x60 | (b[0] & 0x0f);
      else if (first === 2) b[0] = 0x40 | (b[0] & 0x0f);
    }
    return len;
  }

  /** A well-formed TCP or UDP packet with one IP header field broken. */
  private badIpHeader(b: Buffer): number {
    const len = this.chance(50) ? this.validTcp(b, this.int(64), true) : this.validUdp(b, this.pick([53, 80, this.int(65536)]), this.int(64));
    switch (this.int(8)) {
      case 0: // version
        b[0] = (this.pick([0, 1, 5, 6, 7, 15]) << 4) | (b[0] & 0x0f);
        return len;
      case 1: // IHL below 5 or past the packet
        b[0] = 0x40 | this.pick([0, 1, 4, 15, 6 + this.int(10)]);
        if (this.chance(50)) this.fixIpChecksum(b);
        return len;
      case 2: // total length: shorter than the header, longer than the packet, or shorter than the payload
        b.writeUInt16BE(this.pick([0, 19, len + 1 + this.int(100), 65535, 20 + this.int(Math.max(1, len - 20))]), 2);
        this.fixIpChecksum(b);
        return len;
      case 3: // header checksum
        b[10] ^= 1 + this.int(255);
        return len;
      case 4: // a fragment (MF, or an offset)
        b.writeUInt16BE(this.chance(50) ? 0x2000 | this.int(0x2000) : this.int(0x2000), 6);
        this.fixIpChecksum(b);
        return len;
      case 5: {
        // IP options: IHL 6..15 with random option bytes, all lengths consistent
        const optLen = (1 + this.int(10)) * 4;
        if (len + optLen > this.mtu) return len;
        b.copy(b, 20 + optLen, 20, len);
        this.fill(b, 20, optLen);
        b[0] = 0x40 | (5 + optLen / 4);
        b.writeUInt16BE(len + optLen, 2);
        this.fixIpChecksum(b);
        return len + optLen;
      }
      case 6: // the packet cut short after a valid header
        return Math.max(0, len - 1 - this.int(len));
      default: {
        // trailing bytes past the total length (link padding)
        const pad = 1 + this.int(40);
        this.fill(b, len, pad);
        return Math.min(this.mtu, len + pad);
      }
    }
  }

  // ---- TCP ----

  /** A well-formed TCP segment with sane options; returns the packet length. */
  private validTcp(b: Buffer, flags: number, withOptions: boolean, flow?: LiveFlow): number {
    const src = flow?.src ?? this.src();
    const dst = flow?.dst ?? this.dst();
    const t = 20;
    b.writeUInt16BE(flow?.sport ?? 1024 + this.int(64000), t);
    b.writeUInt16BE(flow?.dport ?? this.pick([80, 443, 7000, 22, this.int(65536)]), t + 2);
    b.writeUInt32BE(flow ? flow.seq : this.u32(), t + 4);
    b.writeUInt32BE(flow && flow.peerIsn >= 0 ? (flow.peerIsn + 1 + (this.chance(80) ? 0 : this.int(3000) - 1500)) >>> 0 : this.u32(), t + 8);
    b[t + 13] = flags & 0xff;
    b.writeUInt16BE(this.chance(90) ? 65535 : this.int(65536), t + 14);
    b.writeUInt16BE(0, t + 16);
    b.writeUInt16BE(flags & 0x20 ? this.int(65536) : 0, t + 18);
    let o = t + 20;
    if (withOptions) o = this.saneOptions(b, o, (flags & SYN) !== 0);
    const hl = o - t;
    b[t + 12] = (hl >> 2) << 4;
    const pay = flags & SYN && this.chance(90) ? 0 : this.chance(50) ? 0 : this.int(Math.min(600, this.mtu - 40 - hl));
    this.fill(b, o, pay);
    const tcpLen = hl + pay;
    this.ipHeader(b, 6, src, dst, tcpLen);
    this.tcpChecksum(b, tcpLen);
    return 20 + tcpLen;
  }

  private saneOptions(b: Buffer, o: number, syn: boolean): number {
    const start = o;
    if (syn) {
      b[o++] = 2;
      b[o++] = 4;
      b.writeUInt16BE(this.pick([536, 1460, 1, 0, 65535]), o);
      o += 2;
      if (this.chance(70)) {
        b[o++] = 1;
        b[o++] = 3;
        b[o++] = 3;
        b[o++] = this.int(16);
      }
      if (this.chance(70)) {
        b[o++] = 4;
        b[o++] = 2;
      }
    }
    if (this.chance(50)) {
      b[o++] = 8;
      b[o++] = 10;
      b.writeUInt32BE(this.u32(), o);
      b.writeUInt32BE(this.u32(), o + 4);
      o += 8;
    }
    if (!syn && this.chance(20)) {
      const n = 1 + this.int(3);
      b[o++] = 5;
      b[o++] = 2 + 8 * n;
      for (let i = 0; i < n; i++) {
        b.writeUInt32BE(this.u32(), o);
        b.writeUInt32BE(this.u32(), o + 4);
        o += 8;
      }
    }
    while ((o - start) % 4 !== 0) b[o++] = 1; // NOP padding
    return o;
  }

  private tcpChecksum(b: Buffer, tcpLen: number): void {
    b.writeUInt16BE(0, 36);
    const sum = sumWords(b, 20, tcpLen, pseudoSum4(b.readUInt32BE(12), b.readUInt32BE(16), 6, tcpLen));
    b.writeUInt16BE(~fold(sum) & 0xffff, 36);
  }

  /** Broken TCP headers: offsets, truncation, checksums, flag soup. */
  private tcpMalformed(b: Buffer): number {
    const len = this.validTcp(b, this.u32() & 0xff, this.chance(50));
    const tcpLen = len - 20;
    switch (this.int(6)) {
      case 0: // data offset below 5 or past the segment
        b[32] = (this.pick([0, 1, 4, 15, 6 + this.int(10)]) << 4) | (b[32] & 0x0f);
        this.tcpChecksum(b, tcpLen);
        return len;
      case 1: {
        // the TCP header cut short, IP total length consistent
        const cut = this.int(Math.min(tcpLen, 40));
        b.writeUInt16BE(20 + cut, 2);
        this.fixIpChecksum(b);
        return 20 + cut;
      }
      case 2: // bad checksum
        b[36] ^= 1 + this.int(255);
        return len;
      case 3: {
        // a bit flipped after the checksum was computed
        const i = 20 + this.int(tcpLen);
        b[i] ^= 1 << this.int(8);
        return len;
      }
      case 4: // a bit flipped, checksum fixed: gets past the checksum into the flow table
        b[20 + this.int(Math.min(tcpLen, 20))] ^= 1 << this.int(8);
        this.tcpChecksum(b, tcpLen);
        return len;
      default: // every flag combination, valid checksum
        return len;
    }
  }

  /** SYNs and segments whose option area is broken, checksums valid. */
  private tcpBadOptions(b: Buffer): number {
    const flags = this.chance(60) ? SYN : this.u32() & 0x3f;
    const t = 20;
    b.writeUInt16BE(1024 + this.int(64000), t);
    b.writeUInt16BE(this.pick([80, 443, 7000]), t + 2);
    b.writeUInt32BE(this.u32(), t + 4);
    b.writeUInt32BE(this.u32(), t + 8);
    b[t + 13] = flags;
    b.writeUInt16BE(65535, t + 14);
    b.writeUInt16BE(0, t + 18);
    const optLen = 4 * (1 + this.int(10));
    let o = t + 20;
    const end = o + optLen;
    while (o < end) {
      const room = end - o;
      switch (this.int(12)) {
        case 0:
          b[o++] = 0;
          break; // EOL, then whatever follows
        case 1:
          b[o++] = 1;
          break; // NOP
        case 2:
          b[o++] = this.pick([2, 3, 4, 5, 8]);
          if (o < end) b[o++] = this.pick([0, 1]);
          break; // length 0/1: must not loop
        case 3:
          b[o++] = this.pick([2, 3, 4, 5, 8]);
          if (o < end) b[o++] = room + 1 + this.int(40);
          break; // runs past the end
        case 4:
          if (room >= 3) {
            b[o++] = 2;
            b[o++] = 3;
            b[o++] = this.u32() & 0xff;
          }
          break; // MSS length 3
        case 5:
          if (room >= 3) {
            b[o++] = 3;
            b[o++] = 3;
            b[o++] = 15 + this.int(240);
          }
          break; // window scale above 14
        case 6:
          if (room >= 4) {
            b[o++] = 2;
            b[o++] = 4;
            b.writeUInt16BE(this.pick([0, 1, 65535]), o);
            o += 2;
          }
          break;
        case 7:
          if (room >= 2) {
            b[o++] = 5;
            b[o++] = 2 + this.int(Math.min(room - 1, 40));
          }
          break; // SACK of odd length
        case 8:
          if (room >= 2) {
            b[o++] = 8;
            b[o++] = this.pick([2, 9, 11, 40]);
          }
          break; // timestamps, bad length
        case 9:
          if (room >= 2) {
            b[o++] = 9 + this.int(247);
            b[o++] = 2 + this.int(room - 1);
          }
          break; // unknown kind
        case 10:
          if (room >= 2) {
            b[o++] = 4;
            b[o++] = this.pick([2, 3]);
          }
          break; // SACK-permitted, maybe bad length
        default:
          b[o++] = this.u32() & 0xff;
      }
    }
    b[t + 12] = ((20 + optLen) >> 2) << 4;
    const pay = this.chance(70) ? 0 : this.int(100);
    this.fill(b, end, pay);
    const tcpLen = 20 + optLen + pay;
    this.ipHeader(b, 6, this.src(), this.dst(), tcpLen);
    this.tcpChecksum(b, tcpLen);
    return 20 + tcpLen;
  }

  /** Segments on flows the generator opened: these reach the connection state machine. */
  private tcpOnFlow(b: Buffer): number {
    if (this.flows.length === 0 || (this.flows.length < this.maxFlows && this.chance(15))) {
      const flow: LiveFlow = {
        src: this.pick(this.clients),
        dst: this.pick(this.servers),
        sport: 1024 + this.int(64000),
        dport: this.pick([80, 443, 7000]),
        seq: this.u32(),
        peerIsn: -1,
      };
      this.flows.push(flow);
      const len = this.validTcp(b, SYN, true, flow);
      flow.seq = (flow.seq + 1) >>> 0;
      return len;
    }
    const i = this.int(this.flows.length);
    const flow = this.flows[i];
    const flags = this.pick([ACK, ACK, ACK | PSH, ACK | PSH, FIN | ACK, RST, RST | ACK, SYN, SYN | ACK, 0, this.u32() & 0xff]);
    const saved = flow.seq;
    // mostly in order; sometimes behind, ahead, or anywhere
    if (this.chance(25)) flow.seq = (flow.seq + this.pick([-1, -1000, 1, 70000, this.u32()])) >>> 0;
    const len = this.validTcp(b, flags, this.chance(30), flow);
    const pay = len - 20 - ((b[32] >> 4) << 2);
    flow.seq = this.chance(80) ? (saved + pay + (flags & (FIN | SYN) ? 1 : 0)) >>> 0 : saved;
    if (flags & RST || this.chance(2)) this.flows.splice(i, 1);
    return len;
  }

  // ---- UDP and DNS ----

  /** A well-formed UDP datagram (checksum set, or 0 = none); returns the packet length. */
  private validUdp(b: Buffer, dport: number, payLen: number): number {
    const u = 20;
    b.writeUInt16BE(1024 + this.int(64000), u);
    b.writeUInt16BE(dport, u + 2);
    b.writeUInt16BE(8 + payLen, u + 4);
    b.writeUInt16BE(0, u + 6);
    this.fill(b, u + 8, payLen);
    this.ipHeader(b, 17, this.src(), this.dst(), 8 + payLen);
    this.udpChecksum(b, 8 + payLen);
    return 28 + payLen;
  }

  private udpChecksum(b: Buffer, udpLen: number): void {
    b.writeUInt16BE(0, 26);
    if (this.chance(20)) return; // no checksum (allowed over IPv4)
    const ck = ~fold(sumWords(b, 20, udpLen, pseudoSum4(b.readUInt32BE(12), b.readUInt32BE(16), 17, udpLen))) & 0xffff;
    b.writeUInt16BE(ck === 0 ? 0xffff : ck, 26);
  }

  private udp(b: Buffer): number {
    const len = this.validUdp(b, this.pick([53, 443, 123, 7000, this.int(65536)]), this.int(Math.min(300, this.mtu - 28)));
    const udpLen = len - 20;
    switch (this.int(6)) {
      case 0: // the UDP header cut short
        b.writeUInt16BE(20 + this.int(8), 2);
        this.fixIpChecksum(b);
        return b.readUInt16BE(2);
      case 1: // length field: below 8, past the IP payload, or short of it
        b.writeUInt16BE(this.pick([0, 7, udpLen + 1 + this.int(500), 65535, 8 + this.int(Math.max(1, udpLen - 8))]), 24);
        if (this.chance(50)) b.writeUInt16BE(0, 26);
        return len;
      case 2: // bad checksum (never 0, which means none)
        b[26] ^= 1 + this.int(255);
        if (b.readUInt16BE(26) === 0) b[27] = 1;
        return len;
      default: // well-formed: relayed (or refused) by the UDP sessions
        return len;
    }
  }

  /** A DNS message (mostly malformed) to the resolver's address, port 53. */
  private dns(b: Buffer): number {
    const m = 28;
    const mlen = this.dnsMessage(b, m, Math.min(this.mtu - 28, 600));
    const dst = this.chance(85) ? this.dnsAddress : this.dst();
    this.ipHeader(b, 17, this.src(), dst, 8 + mlen);
    b.writeUInt16BE(1024 + this.int(64000), 20);
    b.writeUInt16BE(53, 22);
    b.writeUInt16BE(8 + mlen, 24);
    this.udpChecksum(b, 8 + mlen);
    return 28 + mlen;
  }

  /** Writes a DNS message at b[m]; returns its length (at most max). */
  private dnsMessage(b: Buffer, m: number, max: number): number {
    if (this.chance(10)) {
      // plain garbage, often shorter than a header
      const n = this.int(this.chance(50) ? 14 : 120);
      this.fill(b, m, n);
      return n;
    }
    b.writeUInt16BE(this.u32() & 0xffff, m);
    // flags: a standard query with RD, or anything (responses, other opcodes)
    b.writeUInt16BE(this.chance(70) ? 0x0100 : this.u32() & 0xffff, m + 2);
    const qd = this.chance(60) ? 1 : this.pick([0, 2, 3, 65535, this.int(65536)]);
    b.writeUInt16BE(qd, m + 4);
    b.writeUInt16BE(this.chance(70) ? 0 : this.int(65536), m + 6);
    b.writeUInt16BE(this.chance(80) ? 0 : this.int(65536), m + 8);
    b.writeUInt16BE(this.chance(70) ? 0 : this.pick([1, 2, this.int(65536)]), m + 10);
    let o = m + 12;
    const end = m + max - 64;
    const questions = Math.min(qd === 0 ? this.int(2) : qd, 3);
    for (let q = 0; q < questions && o < end; q++) {
      o = this.dnsName(b, o, m, end);
      b.writeUInt16BE(this.chance(70) ? this.pick([1, 28]) : this.int(65536), o);
      b.writeUInt16BE(this.chance(90) ? 1 : this.int(65536), o + 2);
      o += 4;
    }
    if (this.chance(20) && o + 11 <= m + max) {
      // an EDNS OPT record, rdlength maybe lying
      b[o] = 0;
      b.writeUInt16BE(41, o + 1);
      b.writeUInt16BE(this.pick([512, 4096, 0]), o + 3);
      b.writeUInt32BE(this.chance(80) ? 0 : this.u32(), o + 5);
      b.writeUInt16BE(this.chance(60) ? 0 : this.int(65536), o + 9);
      o += 11;
    }
    if (this.chance(10)) {
      const n = this.int(40);
      if (o + n <= m + max) {
        this.fill(b, o, n);
        o += n;
      }
    }
    const len = o - m;
    return this.chance(15) ? this.int(len + 1) : len; // truncated anywhere
  }

  /** A name at b[o]: valid, mapped, too long, bad labels, or compression pointer tricks. */
  private dnsName(b: Buffer, o: number, m: number, end: number): number {
    switch (this.int(9)) {
      case 0: // a name the resolver maps
        return this.writeName(b, o, this.pick(this.names));
      case 1: // pointer to itself
        b[o] = 0xc0 | ((o - m) >> 8);
        b[o + 1] = (o - m) & 0xff;
        return o + 2;
      case 2: {
        // a label then a pointer back to it: a loop
        const at = o - m;
        b[o] = 1;
        b[o + 1] = 0x61;
        b[o + 2] = 0xc0 | (at >> 8);
        b[o + 3] = at & 0xff;
        return o + 4;
      }
      case 3: // a pointer past the message, or into the header
        b[o] = 0xc0 | this.int(64);
        b[o + 1] = this.u32() & 0xff;
        return o + 2;
      case 4: // reserved label types 0x40 / 0x80
        b[o] = this.pick([0x40, 0x80]) | this.int(64);
        b[o + 1] = this.u32() & 0xff;
        b[o + 2] = 0;
        return o + 3;
      case 5: {
        // a name longer than 255 bytes
        let p = o;
        while (p + 64 < end && p - o < 300) {
          b[p] = 63;
          b.fill(0x62, p + 1, p + 64);
          p += 64;
        }
        b[p] = 0;
        return p + 1;
      }
      case 6: {
        // a label running past the end of the message
        const n = this.int(30);
        b[o] = 63;
        b.fill(0x63, o + 1, o + 1 + n);
        return o + 1 + n;
      }
      case 7: {
        // random label bytes (dots, zero bytes, high bytes)
        const n = 1 + this.int(30);
        b[o] = n;
        this.fill(b, o + 1, n);
        b[o + 1 + n] = 0;
        return o + 2 + n;
      }
      default: // an ordinary forwarded name
        return this.writeName(b, o, `h${this.int(1000)}.test`);
    }
  }

  private writeName(b: Buffer, o: number, name: string): number {
    for (const label of name.split('.')) {
      b[o++] = label.length;
      o += b.write(label, o, 'latin1');
    }
    b[o++] = 0;
    return o;
  }

  // ---- other protocols ----

  private icmp(b: Buffer): number {
    const n = 4 + this.int(60);
    this.fill(b, 20, n);
    b[20] = this.pick([0, 3, 8, 11, this.int(256)]);
    b[21] = this.int(16);
    if (this.chance(50)) {
      b.writeUInt16BE(0, 22);
      b.writeUInt16BE(checksum(b, 20, n), 22);
    }
    this.ipHeader(b, 1, this.src(), this.dst(), n);
    return 20 + n;
  }

  /**
   * An IPv6 packet: 0-3 extension headers (hop-by-hop, destination options,
   * routing with or without segments left, fragment), then TCP, UDP or ICMPv6
   * (echo, ND, MLD, random) with a right checksum most of the time; then
   * perhaps broken: a lying payload length, a header length past the end, truncation.
   */
  private ipv6(b: Buffer): number {
    b.writeUInt32BE(0x60000000 | (this.chance(90) ? 0 : this.u32() & 0xfffffff), 0);
    b[7] = 64;
    b.writeUInt32BE(0x20010db8, 8);
    b.writeUInt32BE(0, 12);
    b.writeUInt32BE(this.chance(50) ? 0 : this.u32(), 16);
    b.writeUInt32BE(this.chance(80) ? 1 + this.int(4) : this.u32(), 20);
    const multicast = this.chance(10);
    b.writeUInt32BE(multicast ? 0xff020000 : 0x20010db8, 24);
    b.writeUInt32BE(0, 28);
    b.writeUInt32BE(0, 32);
    b.writeUInt32BE(multicast ? 2 : 0x10 + this.int(4), 36);
    const types = [0, 60, 43, 44];
    let p = 40;
    let nextAt = 6;
    for (let n = this.chance(60) ? 0 : 1 + this.int(3); n > 0; n--) {
      const t = this.pick(types);
      b[nextAt] = t;
      const len = t === 44 ? 8 : 8 * (1 + this.int(3));
      b.fill(0, p, p + len);
      if (t !== 44) b[p + 1] = len / 8 - 1;
      if (t === 0 || t === 60) {
        b[p + 2] = 1; // PadN over the rest, or an option of a random type
        b[p + 3] = len - 4;
        if (this.chance(20)) b[p + 2] = this.u32() & 0xff;
      }
      if (t === 43) b[p + 3] = this.chance(50) ? 0 : 1 + this.int(3);
      nextAt = p;
      p += len;
    }
    const proto = this.pick([6, 17, 58, 58, this.int(256)]);
    b[nextAt] = proto;
    const up = p;
    let n = 8 + this.int(40);
    this.fill(b, up, n);
    if (proto === 6) {
      n = Math.max(n, 20);
      b[up + 12] = 5 << 4;
      b[up + 13] = this.chance(50) ? SYN : this.u32() & 0x3f;
      b.writeUInt16BE(80, up + 2);
    } else if (proto === 17) {
      b.writeUInt16BE(this.chance(30) ? 53 : this.int(65536), up + 2);
      b.writeUInt16BE(this.chance(90) ? n : this.int(65536), up + 4);
    } else if (proto === 58) {
      b[up] = this.pick([128, 129, 133, 135, 143, 1, this.int(256)]);
      b[up + 1] = 0;
    }
    b.writeUInt16BE(p - 40 + n, 4);
    const ckAt = proto === 6 ? 16 : proto === 17 ? 6 : proto === 58 ? 2 : -1;
    if (ckAt >= 0 && this.chance(85)) {
      b.writeUInt16BE(0, up + ckAt);
      const sum = sumWords(b, up, n, sumWords(b, 8, 32, 0) + proto + n);
      b.writeUInt16BE(~fold(sum) & 0xffff, up + ckAt);
    }
    let len = up + n;
    if (this.chance(10)) b.writeUInt16BE(this.int(65536), 4);
    if (this.chance(10)) len = this.int(len + 1);
    if (this.chance(5) && p > 40) b[41] = this.u32() & 0xff;
    return len;
  }

  private otherProtocol(b: Buffer): number {
    const n = this.int(80);
    this.fill(b, 20, n);
    this.ipHeader(b, this.pick([0, 2, 4, 41, 47, 50, 58, 132, 136, 253, 255]), this.src(), this.dst(), n);
    return 20 + n;
  }
}

/**
 * The first `count` packets of a fuzzer as records (2-byte big-endian length,
 * then the bytes) for test/helpers/raw-fuzz.py; empty packets are left out (a
 * device cannot carry them). Returns how many were written.
 */
export function packetFile(opts: PacketFuzzerOptions, count: number): { data: Buffer; packets: number } {
  const fz = new PacketFuzzer(opts);
  const slot = Buffer.alloc((opts.mtu ?? 1500) + 128);
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const len = fz.next(slot);
    if (len === 0) continue;
    const rec = Buffer.allocUnsafe(2 + len);
    rec.writeUInt16BE(len, 0);
    slot.copy(rec, 2, 0, len);
    parts.push(rec);
  }
  return { data: Buffer.concat(parts), packets: parts.length };
}
