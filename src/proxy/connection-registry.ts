// The proxy core's live connections: what each is (addresses, name, rule,
// upstream), its bytes so far, and a way to close it from outside (the
// control API, `tunsteer top`): the client gets a RST, the upstream is closed.
//
// An entry wraps the inbound connection the core is handed, so it sees the
// client's stream when the core accepts it and the upstream socket when the
// dial stands; closing before either exists refuses the client and drops the
// upstream the moment it arrives. Listing reads the entries; nothing on the
// data path is counted twice (bytes come from the inbound's own counters).
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../net/endpoint.js';
import type { InboundConnection, RejectHow } from './inbound.js';

/** One live connection as the control API shows it: plain data. */
export interface ConnectionInfo {
  id: number;
  inbound: InboundConnection['inbound'];
  /** tcp until sniffed: then http, tls, or what the sniff found. */
  proto: string;
  src: string;
  dst: string;
  /** The name: a fake IP's, the explicit proxy's, or the SNI/Host once sniffed. */
  host?: string;
  rule: string;
  action: string;
  upstream?: string;
  up: number;
  down: number;
  /** Epoch ms. */
  start: number;
}

/** The log line's fields the core fills in as it decides; read when listing. */
export type ConnectionLine = Record<string, unknown>;

/** How a connection closed from outside ends, in its log line. */
export const CLOSED_BY_CONTROL = 'closed-by-control';

export class TrackedConnection implements InboundConnection {
  client: Duplex | null = null;
  upstream: net.Socket | null = null;
  /** Closed from outside: the core's own ending of it is logged as CLOSED_BY_CONTROL. */
  closed = false;
  readonly start = Date.now();

  constructor(
    private readonly conn: InboundConnection,
    readonly line: ConnectionLine,
  ) {}

  get id(): number {
    return this.conn.id;
  }
  get inbound(): InboundConnection['inbound'] {
    return this.conn.inbound;
  }
  get protocol(): 'tcp' {
    return this.conn.protocol;
  }
  get src(): Endpoint {
    return this.conn.src;
  }
  get dst(): Endpoint {
    return this.conn.dst;
  }
  get hostname(): string | undefined {
    return this.conn.hostname;
  }

  accept(): Duplex {
    const c = this.conn.accept();
    this.client = c;
    if (this.closed) resetStream(c);
    return c;
  }

  reject(how: RejectHow, netUnreachable?: boolean): void {
    this.conn.reject(how, netUnreachable);
  }

  counters(): { up: number; down: number } {
    return this.conn.counters();
  }

  /** The upstream now stands: kept to be closed with the connection (at once if that was asked already). */
  attach(upstream: net.Socket): void {
    this.upstream = upstream;
    if (this.closed) upstream.destroy();
  }

  /** The client gets a RST (or, still waiting for its handshake, is refused with one); the upstream is closed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.upstream?.destroy();
    if (this.client) resetStream(this.client);
    else this.conn.reject('rst');
  }

  info(): ConnectionInfo {
    const l = this.line;
    const { up, down } = this.conn.counters();
    return {
      id: this.conn.id,
      inbound: this.conn.inbound,
      proto: String(l.proto ?? 'tcp'),
      src: String(l.src),
      dst: String(l.dst),
      ...(l.host !== undefined ? { host: String(l.host) } : l.sni !== undefined ? { host: String(l.sni) } : {}),
      rule: String(l.rule),
      action: String(l.action),
      ...(l.upstream !== undefined ? { upstream: String(l.upstream) } : {}),
      up,
      down,
      start: this.start,
    };
  }
}

export class ConnectionRegistry {
  private readonly live = new Map<number, TrackedConnection>();

  get size(): number {
    return this.live.size;
  }

  track(conn: InboundConnection, line: ConnectionLine): TrackedConnection {
    const t = new TrackedConnection(conn, line);
    this.live.set(t.id, t);
    return t;
  }

  forget(t: TrackedConnection): void {
    if (this.live.get(t.id) === t) this.live.delete(t.id);
  }

  list(): ConnectionInfo[] {
    const out: ConnectionInfo[] = [];
    for (const t of this.live.values()) out.push(t.info());
    return out;
  }

  /** Bytes of the connections open now, each way. */
  openBytes(): { up: number; down: number } {
    let up = 0;
    let down = 0;
    for (const t of this.live.values()) {
      const c = t.counters();
      up += c.up;
      down += c.down;
    }
    return { up, down };
  }

  /** False when no such connection is open. */
  close(id: number): boolean {
    const t = this.live.get(id);
    if (!t) return false;
    t.close();
    return true;
  }

  /** Closes every open connection; returns how many. */
  closeAll(): number {
    const all = [...this.live.values()];
    for (const t of all) t.close();
    return all.length;
  }
}

/** Aborts a client stream with a RST: the TUN's stream sends one on destroy(err), a kernel socket needs resetAndDestroy (SO_LINGER 0). */
export function resetStream(client: Duplex): void {
  client.on('error', () => {});
  const c = client as Duplex & { resetAndDestroy?: () => void };
  if (typeof c.resetAndDestroy === 'function') c.resetAndDestroy();
  else client.destroy(new Error('rejected'));
}
