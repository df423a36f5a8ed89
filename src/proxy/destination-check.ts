// Is this address one the gateway itself resolved for this name? A secret
// header (set-header from value_env/value_file) is added only then: a client
// that writes "Host: app.example" on a connection to another address must not
// receive the credential there (issue 20).
//
// Two sources, both the gateway's own: answers its DNS forwarded to a client
// (route-all's DNS hijack: the client connects to what we told it), and its
// own A/AAAA lookups through the resolvers it forwards to. Both are cached by
// their TTL (at least MIN_TTL_S, at most MAX_TTL_S) in a bounded LRU. A miss
// asks the resolvers at most once per name every NEGATIVE_S seconds.
import { Resolver } from 'node:dns/promises';
import { SocketAddress, isIPv4, isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';

export interface ResolvedAddress {
  address: string;
  ttl: number;
}

/** The gateway's own A/AAAA lookup (never the system's getaddrinfo: /etc/hosts is the client's to change). */
export type NameLookup = (name: string) => Promise<ResolvedAddress[]>;

const MIN_TTL_S = 5;
const MAX_TTL_S = 3600;
const NEGATIVE_S = 5;

interface Entry {
  /** address -> expiry, ms */
  addresses: Map<string, number>;
  /** When the resolvers were last asked, ms (0: never). */
  asked: number;
}

export class DestinationCheck {
  private readonly names: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(
    private readonly lookup: NameLookup | null,
    maxNames = 10_000,
    private readonly now: () => number = Date.now,
  ) {
    this.names = new LRUCache({ max: maxNames });
  }

  /** Addresses the gateway told a client (or learned itself) for a name, valid for ttl seconds. */
  learn(name: string, addresses: readonly string[], ttlS: number): void {
    if (addresses.length === 0) return;
    const e = this.entry(normalName(name));
    const until = this.now() + clampTtl(ttlS) * 1000;
    for (const a of addresses) {
      const k = normalAddress(a);
      if (k !== null && (e.addresses.get(k) ?? 0) < until) e.addresses.set(k, until);
    }
  }

  /** True when `address` is one of `name`'s, as resolved by the gateway; a promise when it must ask. */
  verify(name: string, address: string): boolean | Promise<boolean> {
    const n = normalName(name);
    const a = normalAddress(address);
    if (a === null) return false;
    if (this.known(n, a)) return true;
    const e = this.names.get(n);
    if (!this.lookup || (e && this.now() - e.asked < NEGATIVE_S * 1000)) return false;
    return this.ask(n).then(() => this.known(n, a));
  }

  private known(name: string, address: string): boolean {
    const until = this.names.get(name)?.addresses.get(address);
    return until !== undefined && until > this.now();
  }

  private entry(name: string): Entry {
    let e = this.names.get(name);
    if (!e) this.names.set(name, (e = { addresses: new Map(), asked: 0 }));
    return e;
  }

  private ask(name: string): Promise<void> {
    const running = this.inflight.get(name);
    if (running) return running;
    const p = this.lookup!(name)
      .then(
        (answers) => {
          const e = this.entry(name);
          e.asked = this.now();
          for (const r of answers) {
            const k = normalAddress(r.address);
            if (k !== null) e.addresses.set(k, this.now() + clampTtl(r.ttl) * 1000);
          }
        },
        () => {
          this.entry(name).asked = this.now();
        },
      )
      .finally(() => this.inflight.delete(name));
    this.inflight.set(name, p);
    return p;
  }
}

/** A lookup through these resolvers (none: the system's), from these source addresses (route-all: the uplink's). */
/** Where the name lookups go and from which source addresses; read at each lookup, so it may follow the network. */
export interface LookupSource {
  servers?: readonly string[];
  localAddress?: string | null;
  localAddress6?: string | null;
}

export function resolverLookup(source: () => LookupSource): NameLookup {
  const r = new Resolver({ timeout: 2000, tries: 2 });
  let applied = '';
  const configure = () => {
    const s = source();
    const key = `${s.servers?.join(',') ?? ''}|${s.localAddress ?? ''}|${s.localAddress6 ?? ''}`;
    if (key === applied) return;
    applied = key;
    if (s.servers && s.servers.length > 0) r.setServers([...s.servers]);
    if (s.localAddress || s.localAddress6) r.setLocalAddress(s.localAddress || '0.0.0.0', s.localAddress6 || '::0');
  };
  return async (name) => {
    configure();
    const [v4, v6] = await Promise.allSettled([r.resolve4(name, { ttl: true }), r.resolve6(name, { ttl: true })]);
    const out: ResolvedAddress[] = [];
    if (v4.status === 'fulfilled') out.push(...v4.value);
    if (v6.status === 'fulfilled') out.push(...v6.value);
    if (out.length === 0 && v4.status === 'rejected') throw v4.reason;
    return out;
  };
}

const clampTtl = (s: number) => Math.min(MAX_TTL_S, Math.max(MIN_TTL_S, Number.isFinite(s) ? s : MIN_TTL_S));

function normalName(n: string): string {
  const l = n.toLowerCase();
  return l.endsWith('.') ? l.slice(0, -1) : l;
}

/** One spelling per address: IPv4-mapped IPv6 as IPv4, IPv6 in lower case; null for what is not an address. */
function normalAddress(a: string): string | null {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (m && isIPv4(m[1])) return m[1];
  if (isIPv4(a)) return a;
  // one text per IPv6 address (RFC 5952), whoever printed it
  if (isIPv6(a)) return new SocketAddress({ address: a, family: 'ipv6' }).address;
  return null;
}
