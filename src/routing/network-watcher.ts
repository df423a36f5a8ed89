// Watches the kernel's view of the network (rtnetlink: links, addresses,
// routes, both families) and says when the uplink may have changed. Events come
// from a netlink socket made by the addon (netlink.c), watched with its
// watchReadable and read here with read(2); messages are parsed in
// netlink-messages.ts. The watcher only tells *that* something changed: the
// caller reads the state again (discoverNetwork), so what it acts on is what
// the kernel holds now, not a replay of events that may have been lost
// (ENOBUFS when the socket's buffer overflowed).
import { readSync, closeSync } from 'node:fs';
import { loadTunAddon, type NativeTunReader } from '../tun/native-addon.js';
import { concernsUplink, parseNetlink, WATCH_GROUPS, type NetEvent } from './netlink-messages.js';

export interface NetworkWatcherOptions {
  /** Events of the TUN itself are ignored (its index, or its name while the index is unknown). */
  tun?: { index?: number; name?: string };
  /** Watch the namespace at this path (up --netns) instead of this process's. */
  netnsPath?: string;
  /** Called after each read with the events that concern the uplink; overflow: some were lost. */
  onChange(events: NetEvent[], overflow: boolean): void;
  onError?(err: Error): void;
}

export class NetworkWatcher {
  private readonly fd: number;
  private readonly watcher: NativeTunReader;
  private readonly buf = Buffer.alloc(64 * 1024);
  private closed = false;
  /** Messages read, for status and tests. */
  events = 0;
  overflows = 0;

  constructor(private readonly o: NetworkWatcherOptions) {
    const addon = loadTunAddon();
    this.fd = addon.netlinkOpen(WATCH_GROUPS, o.netnsPath);
    this.watcher = addon.watchReadable(this.fd, (_n, err) => {
      if (err) return this.o.onError?.(err);
      this.drain();
    });
    this.watcher.resume();
  }

  private drain(): void {
    const relevant: NetEvent[] = [];
    let overflow = false;
    // bounded: a burst is read in one go, a flood waits for the next wake-up
    for (let i = 0; i < 256 && !this.closed; i++) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK') break;
        if (code === 'ENOBUFS') {
          overflow = true;
          this.overflows++;
          continue;
        }
        this.o.onError?.(e as Error);
        break;
      }
      if (n <= 0) break;
      for (const e of parseNetlink(this.buf, n)) {
        this.events++;
        if (concernsUplink(e, this.o.tun ?? {})) relevant.push(e);
      }
    }
    if (relevant.length || overflow) this.o.onChange(relevant, overflow);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
