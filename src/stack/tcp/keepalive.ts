// The keepalive timer (RFC 9293 §3.8.4): after keepaliveIdle without a
// segment from the peer, probe every keepaliveInterval; keepaliveCount
// unanswered probes and the connection is given up (its memory freed).
import type { TcpOptions } from '../contracts.js';

export class Keepalive {
  /** When the next probe is due; Infinity when off. */
  at = Infinity;
  private sent = 0;

  constructor(private readonly opts: Pick<TcpOptions, 'keepaliveIdle' | 'keepaliveInterval' | 'keepaliveCount'>) {}

  /** The peer was heard from: the idle time starts over. */
  arm(now: number): void {
    if (this.opts.keepaliveIdle <= 0) return;
    this.sent = 0;
    this.at = now + this.opts.keepaliveIdle;
  }

  stop(): void {
    this.at = Infinity;
  }

  /** The timer fired: true when one more probe is to go now, false when the peer is given up. */
  probe(now: number): boolean {
    if (this.sent >= this.opts.keepaliveCount) return false;
    this.sent++;
    this.at = now + this.opts.keepaliveInterval;
    return true;
  }
}
