// The gateway's DNS answers (per-host mode, and route-all with --dns-hijack):
// names that match the configured hosts get A answers from the fake-IP pool
// and AAAA answers from its IPv6 side (an empty NOERROR answer when the pool
// has none: --ipv6 off); every other query is forwarded
// unchanged to the resolvers the system had, over UDP with a TCP retry when
// the answer is truncated, and their answer is returned unchanged. A resolver
// that does not answer gives SERVFAIL after the timeout, never silence.
// Messages are parsed and built with dns-packet.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type Packet } from 'dns-packet';
import type { FakeIpPool } from './fake-ip-pool.js';
import type { HostPatterns } from './host-patterns.js';
import { normalizeName } from './host-patterns.js';
import { ipv4ToString } from '../net/address.js';

export interface DnsOverrideOptions {
  hosts: HostPatterns;
  pool: FakeIpPool;
  /** Resolvers to forward to, "ip" or "ip:port". */
  upstreams: string[];
  timeoutMs: number;
  /** TTL of fake answers: short, so clients come back to us. */
  ttl: number;
  /**
   * Source address for forwarded queries (the uplink's in route-all mode); null: no IPv4 uplink now, IPv4
   * resolvers are skipped (asking them unbound would loop through the TUN). The options may change while
   * running (the network moved): they are read at each query.
   */
  localAddress?: string | null;
  /** Source address for queries forwarded to an IPv6 resolver (the IPv6 uplink's in route-all mode); null: skip IPv6 resolvers. */
  localAddress6?: string | null;
  /**
   * Told the A/AAAA addresses of each forwarded answer (with its smallest
   * TTL): what the gateway told a client a name's addresses are, so a secret
   * header may go to them (../proxy/destination-check.ts).
   */
  onAnswer?: (name: string, addresses: string[], ttl: number) => void;
  /** Told about every forwarded query no resolver answered (the client gets SERVFAIL): one log line each. */
  onFailure?: (f: DnsFailure) => void;
}

/** A lookup that failed: the name and type asked, the resolvers tried, and what each did. */
export interface DnsFailure {
  name: string;
  type: string;
  resolvers: string[];
  reason: string;
}

export interface DnsCounters {
  queries: number;
  mapped: number;
  forwarded: number;
  formerr: number;
  servfail: number;
  dropped: number;
}

const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NOTIMP = 4;
const FLAG_QR = 1 << 15;
const FLAG_RD = 1 << 8;
const FLAG_RA = 1 << 7;

export class DnsOverride {
  readonly counters: DnsCounters = { queries: 0, mapped: 0, forwarded: 0, formerr: 0, servfail: 0, dropped: 0 };

  constructor(readonly opts: DnsOverrideOptions) {}

  /**
   * The answer to one query message, or null when it deserves none (too short
   * to carry an id, or itself a response). `viaTcp`: the query came over TCP,
   * so no truncation dance upstream.
   */
  async answer(query: Buffer, viaTcp = false): Promise<Buffer | null> {
    this.counters.queries++;
    if (query.length < 12 || query.readUInt16BE(2) & FLAG_QR) {
      this.counters.dropped++;
      return null;
    }
    let q: Packet;
    try {
      q = dnsPacket.decode(query);
    } catch {
      this.counters.formerr++;
      return errorReply(query, RCODE_FORMERR);
    }
    if ((q as Packet & { opcode?: string }).opcode !== 'QUERY') return errorReply(query, RCODE_NOTIMP);
    const question = q.questions?.[0];
    if (!question || q.questions!.length !== 1) {
      this.counters.formerr++;
      return errorReply(query, RCODE_FORMERR);
    }
    const name = normalizeName(question.name);
    if (this.opts.hosts.matches(name)) return this.answerMapped(q, name);
    this.counters.forwarded++;
    const r = await this.forward(query, viaTcp);
    if (typeof r !== 'string') {
      if (this.opts.onAnswer) learnAnswer(r, name, this.opts.onAnswer);
      return r;
    }
    this.counters.servfail++;
    this.opts.onFailure?.({ name, type: String(question.type), resolvers: this.opts.upstreams, reason: r });
    return errorReply(query, RCODE_SERVFAIL);
  }

  private answerMapped(q: Packet, name: string): Buffer {
    const question = q.questions![0];
    const answers: dnsPacket.Answer[] = [];
    const inClass = (question.class ?? 'IN') === 'IN';
    if (question.type === 'A' && inClass) {
      const ip = this.opts.pool.assign(name);
      if (ip === null) {
        this.counters.servfail++;
        return encode(q, [], RCODE_SERVFAIL);
      }
      answers.push({ name: question.name, type: 'A', class: 'IN', ttl: this.opts.ttl, data: ipv4ToString(ip) });
    } else if (question.type === 'AAAA' && inClass && this.opts.pool.base6 !== null) {
      // the same index as the name's A answer: one mapping, two addresses
      const ip6 = this.opts.pool.assign6(name);
      if (ip6 === null) {
        this.counters.servfail++;
        return encode(q, [], RCODE_SERVFAIL);
      }
      answers.push({ name: question.name, type: 'AAAA', class: 'IN', ttl: this.opts.ttl, data: ip6 });
    }
    // every other type, and AAAA without an IPv6 pool (--ipv6 off): NOERROR with no records (NODATA)
    this.counters.mapped++;
    return encode(q, answers, 0);
  }

  /** The first answer, or why none came: each resolver's reason. */
  private async forward(query: Buffer, viaTcp: boolean): Promise<Buffer | string> {
    const why: string[] = [];
    for (const up of this.opts.upstreams) {
      const [host, port] = splitHostPort(up);
      const local = net.isIPv6(host) ? this.opts.localAddress6 : this.opts.localAddress;
      if (local === null) continue; // no uplink of that family: SERVFAIL at once, as a resolver with no route fails at once
      const r = viaTcp ? await tcpExchange(query, host, port, this.opts.timeoutMs, local) : await udpExchange(query, host, port, this.opts.timeoutMs, local);
      // A truncated UDP answer is passed on as it is: the client retries over TCP, which we forward over TCP.
      if (typeof r !== 'string') return r;
      why.push(`${up}: ${r}${viaTcp ? ' (TCP)' : ''}`);
    }
    return why.length ? why.join('; ') : 'no resolver to forward to';
  }
}

/** The addresses in an answer for `name` (CNAME chains included: they answer the question), and the smallest TTL. */
function learnAnswer(reply: Buffer, name: string, tell: (name: string, addresses: string[], ttl: number) => void): void {
  let a: Packet;
  try {
    a = dnsPacket.decode(reply);
  } catch {
    return;
  }
  const addresses: string[] = [];
  let ttl = Infinity;
  for (const r of a.answers ?? []) {
    if ((r.type === 'A' || r.type === 'AAAA') && typeof r.data === 'string') {
      addresses.push(r.data);
      ttl = Math.min(ttl, r.ttl ?? 0);
    }
  }
  if (addresses.length > 0) tell(name, addresses, ttl);
}

function encode(q: Packet, answers: dnsPacket.Answer[], rcode: number): Buffer {
  const flags = FLAG_QR | ((q.flags ?? 0) & FLAG_RD) | FLAG_RA | rcode;
  return dnsPacket.encode({ id: q.id, type: 'response', flags, questions: q.questions, answers });
}

/** A reply built from the raw header, for queries dns-packet cannot decode. */
function errorReply(query: Buffer, rcode: number): Buffer {
  const r = Buffer.alloc(12);
  query.copy(r, 0, 0, 2);
  r.writeUInt16BE(FLAG_QR | (query.readUInt16BE(2) & FLAG_RD) | FLAG_RA | rcode, 2);
  return r;
}

function splitHostPort(s: string): [string, number] {
  if (net.isIP(s)) return [s, 53];
  const m = /^\[(.+)\](?::(\d+))?$/.exec(s);
  if (m) return [m[1], m[2] ? Number(m[2]) : 53];
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

/** What a failed exchange says: a socket error in words, or a timeout. */
function socketReason(e: NodeJS.ErrnoException): string {
  if (e.code === 'ECONNREFUSED') return 'refused (nothing listens there: port unreachable)';
  if (e.code === 'ENETUNREACH' || e.code === 'EHOSTUNREACH') return `unreachable (${e.code})`;
  return e.code ?? e.message;
}

export async function udpQuery(query: Buffer, host: string, port: number, timeoutMs: number, localAddress?: string): Promise<Buffer | null> {
  const r = await udpExchange(query, host, port, timeoutMs, localAddress);
  return typeof r === 'string' ? null : r;
}

export async function tcpQuery(query: Buffer, host: string, port: number, timeoutMs: number, localAddress?: string): Promise<Buffer | null> {
  const r = await tcpExchange(query, host, port, timeoutMs, localAddress);
  return typeof r === 'string' ? null : r;
}

/** The answer over UDP, or why there is none. */
function udpExchange(query: Buffer, host: string, port: number, timeoutMs: number, localAddress?: string): Promise<Buffer | string> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (v: Buffer | string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(v);
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    sock.on('error', (e) => finish(socketReason(e)));
    sock.on('message', (m) => {
      // Only the answer to this query (same id) counts.
      if (m.length >= 12 && m.readUInt16BE(0) === query.readUInt16BE(0)) finish(m);
    });
    // connected: only the resolver's answers reach this socket, never an unconnected wildcard one
    sock.bind({ address: localAddress, port: 0 }, () => sock.connect(port, host, () => sock.send(query)));
  });
}

/** The answer over TCP, or why there is none. */
function tcpExchange(query: Buffer, host: string, port: number, timeoutMs: number, localAddress?: string): Promise<Buffer | string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, localAddress });
    let acc = Buffer.alloc(0);
    let done = false;
    const finish = (v: Buffer | string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    sock.on('error', (e) => finish(socketReason(e)));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.end(Buffer.concat([len, query]));
    });
    sock.on('data', (d) => {
      acc = Buffer.concat([acc, d]);
      if (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) finish(acc.subarray(2, 2 + acc.readUInt16BE(0)));
    });
    sock.on('end', () => finish('closed without an answer'));
  });
}
