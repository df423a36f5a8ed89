// The TPROXY UDP inbound's sockets: one transparent socket per family that
// nftables hands the routed datagrams to (each with its original destination,
// IP_ORIGDSTADDR), and per family a raw reply socket and a raw ICMP socket
// that send FROM the original destination. All are made while the data plane
// is still root (CAP_NET_ADMIN / CAP_NET_RAW), long before any flow exists.
import { closeSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { loadTunAddon, type Endpoint, type NativeTunReader } from '../tun/native-addon.js';
import type { TproxyUdpCounters } from './tproxy-udp-contracts.js';

/** Datagrams read per readable wake before yielding to the event loop (the watcher fires again if more wait). */
const RECV_BATCH = 64;

interface Side {
  family: 4 | 6;
  fd: number;
  replyFd: number;
  icmpFd: number;
  watcher: NativeTunReader | null;
}

/** payload is only valid during the call: the receive buffer is reused. */
export type OnTproxyDatagram = (src: Endpoint, dst: Endpoint, payload: Buffer) => void;

export class TproxyUdpSockets {
  private readonly sides: Side[] = [];
  private readonly buf = Buffer.allocUnsafe(65536);
  private localAddresses = new Set<string>();
  private closed = false;
  /** The port the transparent sockets listen on (0 before listen). */
  port = 0;

  constructor(
    private readonly counters: Pick<TproxyUdpCounters, 'udpIn' | 'udpDropped'>,
    private readonly onDatagram: OnTproxyDatagram,
    private readonly onError?: (err: Error) => void,
  ) {}

  /**
   * The transparent sockets on 0.0.0.0:port and [::]:port (IPv6 only) and the
   * reply sockets per family. Needs CAP_NET_ADMIN or CAP_NET_RAW: call this
   * before dropping root. On failure nothing is left open.
   */
  listen(port: number): void {
    const addon = loadTunAddon();
    this.port = port;
    this.localAddresses = hostAddresses();
    try {
      for (const [host, family] of [
        ['0.0.0.0', 4],
        ['::', 6],
      ] as const) {
        const side: Side = { family, fd: -1, replyFd: -1, icmpFd: -1, watcher: null };
        this.sides.push(side);
        side.fd = addon.transparentUdp(host, port, family);
        side.replyFd = addon.udpReplySocket(family);
        side.icmpFd = addon.icmpReplySocket(family);
        side.watcher = addon.watchReadable(side.fd, (_n, err) => {
          if (err) this.onError?.(err);
          else this.drain(side);
        });
        side.watcher.resume();
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.sides) {
      s.watcher?.close();
      for (const fd of [s.fd, s.replyFd, s.icmpFd]) {
        if (fd < 0) continue;
        try {
          closeSync(fd);
        } catch {
          // already gone
        }
      }
    }
    this.sides.length = 0;
  }

  /** A datagram to `to`, sent from `from` (the flow's original destination): bytes sent, -1 dropped (buffer full); throws on failure. */
  sendFrom(from: Endpoint, to: Endpoint, msg: Buffer): number {
    return loadTunAddon().udpSendFrom(this.side(from.family, 'reply').replyFd, msg, from.address, from.port, to.address, to.port);
  }

  /** ICMP port unreachable from dst to the client, quoting a datagram of udpLength bytes (UDP header included). */
  portUnreachable(dst: Endpoint, client: Endpoint, udpLength: number): number {
    return loadTunAddon().udpPortUnreachable(this.side(dst.family, 'ICMP').icmpFd, client.address, client.port, dst.address, dst.port, udpLength);
  }

  /** An address of this host; the list is read again on a miss (addresses come and go), which only datagrams to our own port pay for. */
  isLocal(address: string): boolean {
    if (address.startsWith('127.') || this.localAddresses.has(address)) return true;
    this.localAddresses = hostAddresses();
    return this.localAddresses.has(address);
  }

  private side(family: 4 | 6, what: string): Side {
    const side = this.sides.find((s) => s.family === family);
    if (!side) throw new Error(`no IPv${family} ${what} socket`);
    return side;
  }

  private drain(side: Side): void {
    const addon = loadTunAddon();
    for (let i = 0; i < RECV_BATCH && !this.closed; i++) {
      let d;
      try {
        d = addon.udpRecv(side.fd, this.buf);
      } catch {
        // a per-datagram error (ICMP-reported, ...): that one is lost
        this.counters.udpDropped++;
        continue;
      }
      if (d === null) return;
      this.counters.udpIn++;
      if (d.src === undefined || d.truncated) {
        this.counters.udpDropped++;
        continue;
      }
      this.onDatagram(d.src, d.dst, this.buf.subarray(0, d.length));
    }
  }
}

function hostAddresses(): Set<string> {
  const out = new Set<string>(['::1']);
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}
