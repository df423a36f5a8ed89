// Who made a connection: sock_diag gives the client socket's uid and inode
// (microseconds, synchronous), then, when a rule asks for the program, the
// process holding that inode is searched in /proc (milliseconds, async, so
// the event loop keeps moving packets meanwhile). Answers are cached by
// inode in a bounded LRU: the connections of one socket (HTTP requests on a
// kept-alive stream, a UDP socket's flows) cost one search.
import { LRUCache } from 'lru-cache';
import type { Endpoint } from '../net/endpoint.js';
import type { OwnerAnswer, OwnerLookup } from '../proxy/owner-lookup.js';
import type { ConnectionOwner } from '../proxy/rules/rule-types.js';
import { ProcSockets, type ProcessInfo } from './proc-sockets.js';
import { SockDiag, type DiagMiss } from './sock-diag.js';

export interface OwnerResolverOptions {
  /** The namespace whose sockets to ask about; default this process's. */
  netns?: string;
  /** Finds the process holding a socket; default: /proc, here (a data plane without root passes its supervisor's). */
  findProcess?: (inode: number, uid: number) => Promise<ProcessInfo | null>;
  /** Inodes remembered (default 4096), and for how long (default 30 s: an inode number is reused only after its socket is gone). */
  cacheSize?: number;
  cacheTtlMs?: number;
}

const MISS_WHY: Record<DiagMiss, string> = {
  'no-socket': 'no socket on this host has this address pair (forwarded from another host, or already closed)',
  closed: 'the socket is closed (its program let go of it; only the kernel still holds it)',
  'not-an-address': 'the connection has no IP addresses to look up',
  'no-answer': 'sock_diag gave no answer',
};

export interface OwnerCounters {
  owner_lookups: number;
  owner_not_found: number;
  owner_process_searches: number;
  owner_cache_hits: number;
}

export class OwnerResolver implements OwnerLookup {
  private diag: SockDiag | null = null;
  private readonly findProcess: (inode: number, uid: number) => Promise<ProcessInfo | null>;
  private readonly cache: LRUCache<number, ProcessInfo>;
  private readonly inFlight = new Map<number, Promise<ProcessInfo | null>>();
  readonly counters: OwnerCounters = { owner_lookups: 0, owner_not_found: 0, owner_process_searches: 0, owner_cache_hits: 0 };

  constructor(private readonly o: OwnerResolverOptions = {}) {
    const proc = new ProcSockets();
    this.findProcess = o.findProcess ?? ((inode, uid) => proc.find(inode, uid));
    this.cache = new LRUCache({ max: o.cacheSize ?? 4096, ttl: o.cacheTtlMs ?? 30_000 });
  }

  private openError: string | null = null;

  /**
   * Makes the sock_diag socket now: in another namespace that takes privileges
   * the data plane gives up once started. Otherwise it is made at the first lookup.
   */
  open(): void {
    try {
      this.diag ??= new SockDiag(this.o.netns);
    } catch (e) {
      this.openError = (e as Error).message;
    }
  }

  async lookup(proto: 'tcp' | 'udp', src: Endpoint, dst: Endpoint, need: 1 | 2): Promise<OwnerAnswer> {
    this.counters.owner_lookups++;
    let found;
    try {
      if (this.openError !== null) throw new Error(this.openError);
      this.diag ??= new SockDiag(this.o.netns);
      found = this.diag.lookup(proto, { local: src, remote: dst });
    } catch (e) {
      this.counters.owner_not_found++;
      return { owner: null, why: `sock_diag unavailable: ${(e as Error).message}` };
    }
    if (typeof found === 'string') {
      this.counters.owner_not_found++;
      return { owner: null, why: MISS_WHY[found] };
    }
    const owner: ConnectionOwner = { uid: found.uid };
    if (need < 2) return { owner };
    const p = await this.processOf(found.inode, found.uid);
    if (!p) return { owner, why: 'no process holds the socket any more (it exited, or passed the socket on and closed it)' };
    owner.pid = p.pid;
    if (p.exe !== undefined) owner.exe = p.exe;
    if (p.comm !== undefined) owner.comm = p.comm;
    return { owner };
  }

  private async processOf(inode: number, uid: number): Promise<ProcessInfo | null> {
    const hit = this.cache.get(inode);
    if (hit !== undefined) {
      this.counters.owner_cache_hits++;
      return hit;
    }
    let p = this.inFlight.get(inode);
    if (!p) {
      this.counters.owner_process_searches++;
      p = this.findProcess(inode, uid).catch(() => null);
      this.inFlight.set(inode, p);
      void p.then((r) => {
        this.inFlight.delete(inode);
        // a miss is not remembered long: the process may have been between fork and exec
        if (r) this.cache.set(inode, r);
      });
    }
    return p;
  }

  close(): void {
    this.diag?.close();
  }
}
