// The TUN stack's pending connection as the proxy core's inbound: the stack
// owns the contract (src/stack/contracts.ts), this side adapts to it. The
// hostname behind a fake IP comes from the data plane's lookup, not the stack.
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../../net/endpoint.js';
import type { PendingConnection } from '../../stack/contracts.js';
import type { InboundConnection, RejectHow } from '../inbound.js';

/** The name behind a destination (a fake IP in per-host mode), known before any byte flows. */
export type HostnameLookup = (dst: Endpoint) => string | undefined;

export class TunInbound implements InboundConnection {
  readonly inbound = 'tun' as const;
  readonly protocol = 'tcp' as const;

  constructor(
    private readonly conn: PendingConnection,
    private readonly lookup?: HostnameLookup,
  ) {}

  get id(): number {
    return this.conn.id;
  }
  get src(): Endpoint {
    return this.conn.src;
  }
  get dst(): Endpoint {
    return this.conn.dst;
  }
  get hostname(): string | undefined {
    return this.lookup?.(this.conn.dst);
  }
  accept(): Duplex {
    return this.conn.accept();
  }
  /** A RST for a refusal or a rule's reject; ICMP host (or net) unreachable when the upstream cannot be reached. */
  reject(how: RejectHow, netUnreachable = false): void {
    if (how === 'unreachable') this.conn.unreachable(netUnreachable);
    else this.conn.reject();
  }
  counters(): { up: number; down: number } {
    return this.conn.counters();
  }
}
