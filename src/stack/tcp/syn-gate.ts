// Admission of new TCP connections, before anything is allocated: one check
// of the limits (connections held, connections pending their upstream, the
// memory budget) for a SYN and for a SYN cookie's ACK alike; the SYN backlog
// of half-open connections in arrival order, with SYN cookies (RFC 4987 §3.6)
// or eviction of the oldest when it is full, and expiry of entries whose
// handshake never completes. New flows get a random ISN.
import { randomFillSync } from 'node:crypto';
import type { Segment, TcpOptions } from '../contracts.js';
import { Drop, type DropCounters } from '../drop-counters.js';
import type { MemoryBudget } from '../memory-budget.js';
import type { StackOptions, StackCounters } from '../stack-options.js';
import type { StackOutput } from '../stack-output.js';
import { isIp6Id, type Ip6Table } from '../wire/ip6-table.js';
import { writeTcpSegment } from '../wire/segment-writer.js';
import type { FlowRunner } from './flow-runner.js';
import { SynCookies, TUPLE_WORDS_V6, newCookieDecoded } from './syn-cookie.js';
import { StatelessSegment, cookieSynAck } from './out-segment.js';
import { TcpConnection } from './tcp-connection.js';
import { TcpFlow } from './tcp-flow.js';
import type { TcpFlows } from './tcp-flows.js';

/** Flowless ACKs are checked for cookies until this long after the last cookie went out (two key periods). */
const COOKIE_RECENT_MS = 130_000;

type GateOptions = Pick<StackOptions, 'maxConnections' | 'maxPending' | 'maxHalfOpen' | 'synCookies' | 'halfOpenTimeoutMs'>;

export class SynGate {
  /** SYN backlog in arrival order; entries that completed or closed are skipped lazily. */
  private halfOpenQueue: TcpFlow[] = [];
  private halfOpenHead = 0;
  private readonly cookies = new SynCookies();
  private readonly cookieSeg = new StatelessSegment();
  private readonly cookieDecoded = newCookieDecoded();
  /** When the last cookie went out: flowless ACKs are checked for cookies only for a while after. */
  private lastCookieAt = -Infinity;
  private readonly isnPool = new Uint32Array(256);
  private isnNext = 256;

  constructor(
    private readonly flows: TcpFlows,
    private readonly runner: FlowRunner,
    private readonly budget: MemoryBudget<TcpFlow>,
    private readonly out: StackOutput,
    private readonly ip6: Ip6Table,
    private readonly drops: DropCounters,
    private readonly counters: StackCounters,
    private readonly opts: GateOptions,
    private readonly tcp4: TcpOptions,
    private readonly tcp6: TcpOptions,
  ) {}

  /** A SYN without a flow: refused, answered with a cookie, or a new half-open connection. */
  syn(src: number, dst: number, sport: number, dport: number, seg: Segment, now: number): void {
    if (!this.admit(src, dst, sport, dport, seg)) return;
    if (this.counters.tcpHalfOpen >= this.opts.maxHalfOpen) {
      if (this.opts.synCookies) return this.sendCookie(src, dst, sport, dport, seg, now);
      this.evictOldestHalfOpen();
    }
    const flow = this.newFlow(src, dst, sport, dport);
    flow.clientIsn = seg.seq;
    flow.conn = TcpConnection.fromSyn(flow, this.tcpOptions(src), this.nextIsn(), seg, now);
    flow.bornAt = now;
    this.halfOpenQueue.push(flow);
    this.counters.tcpHalfOpen++;
    this.flows.add(flow);
  }

  /**
   * An ACK without a flow: when ack - 1 is one of our cookies the connection is
   * created ESTABLISHED (not half-open) and, like any new one, waits for the
   * layer above's accept. False when it is not a cookie.
   */
  cookieAck(src: number, dst: number, sport: number, dport: number, seg: Segment, now: number): boolean {
    if (now - this.lastCookieAt >= COOKIE_RECENT_MS) return false;
    const d = this.cookieDecoded;
    if (!this.cookies.checkAck(this.cookieTuple(src, dst, sport, dport), seg.seq, seg.ack, seg.tsVal, seg.tsEcr, now, d)) return false;
    if (!this.admit(src, dst, sport, dport, seg)) return true;
    const flow = this.newFlow(src, dst, sport, dport);
    flow.halfOpen = false;
    flow.clientIsn = (seg.seq - 1) >>> 0;
    flow.bornAt = now;
    flow.conn = TcpConnection.fromCookie(flow, this.tcpOptions(src), (seg.ack - 1) >>> 0, seg, d, now);
    this.counters.synCookiesAccepted++;
    this.flows.add(flow);
    return true;
  }

  /** The handshake completed: the flow leaves the SYN backlog. */
  handshakeDone(flow: TcpFlow): void {
    if (!flow.halfOpen) return;
    flow.halfOpen = false;
    this.counters.tcpHalfOpen--;
  }

  /** The flow is gone; if still half-open it leaves the count (its queue entry is skipped lazily). */
  forgotten(flow: TcpFlow): void {
    this.handshakeDone(flow);
  }

  /** Resets half-open flows older than halfOpenTimeoutMs (O(1) per expired entry). */
  expire(now: number): void {
    for (let f = this.oldestHalfOpen(); f !== undefined && now - f.bornAt >= this.opts.halfOpenTimeoutMs; f = this.oldestHalfOpen()) {
      this.drops.count(Drop.syn_backlog_timeout);
      this.runner.abort(f);
      if (!f.closed) this.flows.forget(f, 'aborted'); // abort always closes; this only guards the count
    }
  }

  /** When expire() next has something to do: the oldest half-open flow's timeout (Infinity: none). */
  nextDeadline(): number {
    const f = this.oldestHalfOpen();
    return f === undefined ? Infinity : f.bornAt + this.opts.halfOpenTimeoutMs;
  }

  /**
   * The one admission check: over the connection or pending limit, or over the
   * memory budget, the client gets a RST (counted) and nothing is kept.
   */
  private admit(src: number, dst: number, sport: number, dport: number, seg: Segment): boolean {
    const overLimit = this.flows.size >= this.opts.maxConnections || this.counters.tcpPending >= this.opts.maxPending;
    if (!overLimit && !this.budget.over()) return true;
    this.counters.synRefused++;
    this.drops.count(overLimit ? Drop.syn_over_limit : Drop.syn_over_memory);
    this.flows.replyRst(src, dst, sport, dport, seg);
    return false;
  }

  private newFlow(src: number, dst: number, sport: number, dport: number): TcpFlow {
    if (isIp6Id(src)) {
      this.ip6.acquire(src);
      this.ip6.acquire(dst);
    }
    return new TcpFlow(this.flows, src, dst, sport, dport);
  }

  private tcpOptions(src: number): TcpOptions {
    return isIp6Id(src) ? this.tcp6 : this.tcp4;
  }

  /** The oldest still half-open flow, dropping finished entries off the front. */
  private oldestHalfOpen(): TcpFlow | undefined {
    const q = this.halfOpenQueue;
    while (this.halfOpenHead < q.length && !q[this.halfOpenHead].halfOpen) this.halfOpenHead++;
    if (this.halfOpenHead > 1024 && this.halfOpenHead * 2 > q.length) {
      this.halfOpenQueue = q.slice(this.halfOpenHead);
      this.halfOpenHead = 0;
    }
    return this.halfOpenQueue[this.halfOpenHead];
  }

  private evictOldestHalfOpen(): void {
    const f = this.oldestHalfOpen();
    if (f === undefined) return;
    this.drops.count(Drop.syn_backlog_evicted);
    // Unanswered, it goes silently: a real client's SYN comes again in a second and
    // gets another chance, where a RST would have failed its connect at once.
    this.runner.dropSilently(f);
    if (!f.closed) this.flows.forget(f, 'aborted'); // abort always closes; this only guards the count
  }

  /** The 4-tuple as words for the cookie codec (an IPv6 id unfolded into its address). */
  private cookieTuple(src: number, dst: number, sport: number, dport: number): number {
    const c = this.cookies;
    if (!isIp6Id(src)) return c.setV4(src, dst, sport, dport);
    const w = c.tuple;
    for (let k = 0; k < 4; k++) {
      w[k] = this.ip6.word(src, k);
      w[4 + k] = this.ip6.word(dst, k);
    }
    w[8] = ((sport << 16) | dport) >>> 0;
    return TUPLE_WORDS_V6;
  }

  /** The SYN backlog is full: answer with a SYN cookie and keep nothing (RFC 4987 §3.6). */
  private sendCookie(src: number, dst: number, sport: number, dport: number, seg: Segment, now: number): void {
    const iss = this.cookies.make(this.cookieTuple(src, dst, sport, dport), seg.seq, seg.mss, now);
    cookieSynAck(this.cookieSeg, this.tcpOptions(src), iss, seg, now);
    this.out.commit(writeTcpSegment(this.out.slot(), dst, src, dport, sport, this.cookieSeg, this.ip6));
    this.counters.synCookiesSent++;
    this.lastCookieAt = now;
  }

  private nextIsn(): number {
    if (this.isnNext >= this.isnPool.length) {
      randomFillSync(this.isnPool);
      this.isnNext = 0;
    }
    return this.isnPool[this.isnNext++];
  }
}
