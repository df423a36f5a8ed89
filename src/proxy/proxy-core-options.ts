// What the proxy core is built with, what it counts, and what a reload swaps in.
import type { Logger } from '../logging/log.js';
import type { DestinationCheck } from './destination-check.js';
import type { OwnerLookup } from './owner-lookup.js';
import type { Policy } from './policy.js';
import type { openUpstream } from './upstream-open.js';

export interface ProxyCoreOptions {
  log: Logger;
  /** Source address for direct dials (the uplink's in route-all mode); null: no IPv4 uplink now. Read at each dial, so it may change. */
  localAddress?: string | null;
  /** For IPv6 destinations (the IPv6 uplink's); null: no IPv6 path, IPv6 dials fail at once. */
  localAddress6?: string | null;
  connectTimeoutMs: number;
  /** Resolves a hostname for dialling (per-host mode: through the resolvers the system had); family: the one the client used, tried first. */
  lookup?: (hostname: string, family?: 4 | 6) => Promise<string>;
  /** True for addresses of the fake-IP pool: without a hostname such a connection is stale. */
  isFakeAddress?: (address: string) => boolean;
  /** Told when a connection to a fake IP ends: the address is not recycled until its hold time after that. */
  fakeAddressUsed?: (address: string) => void;
  /** Where secrets may go: addresses the gateway resolved for a name. Default: the system's resolvers. */
  destinations?: DestinationCheck;
  /**
   * The gateway's own DNS over TCP (clients retry there after a truncated answer);
   * address '*' takes port 53 of every destination (route-all's DNS hijack); idleMs: a
   * connection with no query in flight is closed after it (default 30 s, RFC 7766 §6.2.3).
   */
  dnsOverTcp?: { address: string; idleMs?: number; answer: (query: Buffer) => Promise<Buffer | null> };
  /** Rules and upstreams; none means everything goes direct. */
  policy?: Policy;
  /** How long to wait for a client's first bytes (default 300 ms). */
  sniffTimeoutMs?: number;
  /** Serve HTTP request by request with a log line each (default true; always when a rule depends on names). */
  httpInspect?: boolean;
  /** Who made a connection (rules on user and process); none: such rules never match, and the line says why. */
  owners?: OwnerLookup;
  /** Opens the upstream side (default: openUpstream, real sockets); the unit tests give a fake. */
  openUpstream?: typeof openUpstream;
}

export interface ProxyCounters {
  active: number;
  total: number;
  failed: number;
  rejected: number;
  bytesUp: number;
  bytesDown: number;
  httpRequests: number;
  /** Connections to a fake IP whose SNI or Host named another host (reset or 421). */
  fakeIpMismatch: number;
  /** Requests refused because a secret header would have gone to an address that is not the name's. */
  secretWithheld: number;
}

/** What a reload swaps in the core, all at once: new connections and new HTTP requests see the new values. */
export interface CoreSettings {
  policy: Policy;
  sniffTimeoutMs: number;
  httpInspect: boolean;
  connectTimeoutMs: number;
}
