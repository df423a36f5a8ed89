// Loads the tunsteer_tun addon (src/tun/native/tun.c, built by binding.gyp into
// build/Release at `npm ci`) and types its API. Loaded lazily, so code that only
// uses the in-memory device never needs the build.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TunReaderStats {
  wakes: number;
  batches: number;
  packets: number;
  bytes: number;
  /** Packets longer than a slot: the kernel cut them, the reader dropped them. */
  truncated: number;
  /** Packets lost to a per-packet read error. */
  errors: number;
}

export interface NativeTunReader {
  /** Start (or restart) polling the fd. */
  resume(): void;
  pause(): void;
  /** Stop for good and release the slab and callback; idempotent. Close the fd after this. */
  close(): void;
  stats(): TunReaderStats;
}

/** What a TUN writer thread (tx-thread.c) wrote, dropped and waited for. */
export interface TxThreadStats {
  /** Packets and bytes (virtio-net header included) the kernel took. */
  packets: number;
  bytes: number;
  /** Packets submitted but not written (EAGAIN/ENOBUFS/EIO stop a bank, or the fd failed), and their bytes. */
  drops: number;
  dropBytes: number;
  /** Banks submitted; times the thread was woken from sleep. */
  submits: number;
  wakes: number;
  /** submit() calls that waited for the writer because every bank was queued, and the time they waited. */
  stalls: number;
  stallMs: number;
  /** Banks small enough (inlineBytes) to be written on the calling thread, nothing being queued. */
  inline: number;
}

/** A writer thread per TUN fd: the write()s of a ring of TX banks, off the JS thread (src/tun/native/tx-thread.c). */
export interface NativeTxThread {
  /** Queue slots [0, count) of bank (the next in ring order); returns count once the bank after it is free. Throws the errno of an earlier write that made the fd unusable. */
  submit(bank: number, count: number): number;
  /** Write what is queued, join the thread, release the banks; idempotent. Close the fd after this. */
  close(): void;
  stats(): TxThreadStats;
}

/** err set: the fd failed and the reader paused itself; count packets were read before. */
export type ReaderCallback = (count: number, err: NodeJS.ErrnoException | undefined) => void;

export interface Endpoint {
  family: 4 | 6;
  address: string;
  port: number;
}

/** What udpRecv read: the payload is buf[0, length); dst is the address the client sent to. */
export type UdpDatagram = { length: number; truncated: boolean; src: Endpoint; dst: Endpoint } | { length: -1; truncated?: undefined; src?: undefined; dst?: undefined };

export interface TunAddon {
  /** netns: create the device in that network namespace (a path such as /proc/PID/ns/net). */
  open(name: string, flags: number, netns?: string): { fd: number; name: string };
  createReader(fd: number, slab: Uint8Array, lengths: Uint32Array, slotSize: number, maxBatch: number, cb: ReaderCallback): NativeTunReader;
  /** Packets written; count - written were dropped. Throws only if the fd is unusable. */
  writeBatch(fd: number, slab: Uint8Array, lengths: Uint32Array, count: number, slotSize: number): number;
  /**
   * A writer thread for fd over banks slabs[b] / lengths[b] of capacity slots each (see NativeTxThread).
   * inlineBytes (default 0): a bank of at most that many bytes, submitted while none is queued, is written on the calling thread.
   */
  createTxThread(fd: number, slabs: readonly Uint8Array[], lengths: readonly Uint32Array[], slotSize: number, capacity: number, inlineBytes?: number): NativeTxThread;
  /** The destination before an nftables/iptables redirect; null if the connection was not redirected. */
  originalDst(fd: number): { family: 4 | 6; address: string; port: number } | null;
  /** A listening TCP socket with IP_TRANSPARENT (TPROXY); needs CAP_NET_ADMIN. */
  transparentListener(address: string, port: number, family: 4 | 6, backlog: number): number;
  /** A UNIX stream socketpair (O_CLOEXEC), outside libuv's reach. */
  socketPair(): [number, number];
  /** Passes fd over a UNIX socket (SCM_RIGHTS). */
  sendFd(socketFd: number, fd: number): void;
  /** One passed fd, or -1 if none has arrived yet; throws EPIPE when the peer closed without sending. */
  recvFd(socketFd: number): number;
  /** cb(0, undefined) whenever fd is readable (level-triggered): drain it with udpRecv. Paused at first. */
  watchReadable(fd: number, cb: ReaderCallback): NativeTunReader;
  /** A UDP socket with IP(V6)_TRANSPARENT and IP(V6)_RECVORIGDSTADDR, bound (TPROXY); needs CAP_NET_ADMIN or CAP_NET_RAW. */
  transparentUdp(address: string, port: number, family: 4 | 6): number;
  /** One datagram into buf, or null when none waits; length -1: a datagram without an original destination, skipped. */
  udpRecv(fd: number, buf: Uint8Array): UdpDatagram | null;
  /** A raw UDP socket with IP(V6)_TRANSPARENT that sends from any address and receives nothing; needs CAP_NET_RAW. */
  udpReplySocket(family: 4 | 6): number;
  /**
   * A non-blocking TCP socket bound to address with IP_BIND_ADDRESS_NO_PORT: the port is
   * chosen at connect(), per destination (upstream-socket.c). Throws the errno error of
   * socket/setsockopt/bind (EADDRNOTAVAIL: the address is not this host's).
   */
  tcpSocketNoPort(address: string, family: 4 | 6): number;
  /** One datagram from src (any address) to dst through a udpReplySocket: payload bytes sent, or -1 when the buffer is full (dropped). */
  udpSendFrom(fd: number, buf: Uint8Array, srcAddress: string, srcPort: number, dstAddress: string, dstPort: number): number;
  /** A raw ICMP (ICMPv6) socket with IP(V6)_TRANSPARENT that sends errors from any address and receives nothing; needs CAP_NET_RAW. */
  icmpReplySocket(family: 4 | 6): number;
  /** ICMP port unreachable from dst to the client, quoting the client's datagram (udpLength bytes of UDP): bytes sent, -1 when the buffer is full. */
  udpPortUnreachable(fd: number, clientAddress: string, clientPort: number, dstAddress: string, dstPort: number, udpLength: number): number;
  /**
   * An rtnetlink socket (non-blocking) subscribed to the RTMGRP_* groups in the bitmask,
   * made in netns when given: watch it with watchReadable, read it with fs.readSync
   * (ENOBUFS: events were lost, read the state again). src/tun/native/netlink.c.
   */
  netlinkOpen(groups: number, netns?: string): number;
  /**
   * A NETLINK_SOCK_DIAG socket (non-blocking), made in netns when given: write one
   * inet_diag request with fs.writeSync, read its answer with fs.readSync right after.
   * src/tun/native/sock_diag.c, src/owner/sock-diag.ts.
   */
  sockDiagOpen(netns?: string): number;
  /** TUNGETIFF: the device's IFF_* flags (IFF_VNET_HDR: every packet carries a virtio-net header). src/tun/native/offload.c. */
  tunFlags(fd: number): number;
  /** TUNSETVNETHDRSZ. */
  tunSetVnetHdrSize(fd: number, bytes: number): void;
  /** TUNSETOFFLOAD with TUN_F_* bits; false when the kernel refuses the combination (EINVAL). */
  tunSetOffload(fd: number, flags: number): boolean;
  /** Whether the queue-steering eBPF program loads here (kernel >= 4.16 with BPF, CAP_BPF or CAP_SYS_ADMIN). src/tun/native/steering.c. */
  tunSteeringLoads(): boolean;
  /** Load the steering program and attach it to the device of this queue's fd (TUNSETSTEERINGEBPF); throws the failing step's errno. */
  tunSteeringAttach(fd: number): void;
  readonly IFF_MULTI_QUEUE: number;
  readonly IFF_VNET_HDR: number;
  readonly TUN_F_CSUM: number;
  readonly TUN_F_TSO4: number;
  readonly TUN_F_TSO6: number;
  readonly TUN_F_USO4: number;
  readonly TUN_F_USO6: number;
  /** sizeof(struct virtio_net_hdr): 10. */
  readonly VNET_HDR_LEN: number;
}

const ADDON = join('build', 'Release', 'tunsteer_tun.node');
let cached: TunAddon | null = null;

/** The directory holding build/Release/tunsteer_tun.node: the package root, from src/ or dist/src/. */
function findAddon(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, ADDON);
    if (existsSync(p)) return p;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw Object.assign(new Error(`${ADDON} not found above ${fileURLToPath(import.meta.url)}: run \`npx node-gyp rebuild\` (npm ci does)`), { code: 'ERR_TUN_ADDON_MISSING' });
}

export function loadTunAddon(): TunAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const addon = require(findAddon()) as TunAddon & { unsupported?: boolean };
  if (addon.unsupported) {
    throw Object.assign(new Error(`native TUN I/O needs Linux, not ${process.platform}`), { code: 'ERR_TUN_UNSUPPORTED' });
  }
  cached = addon;
  return addon;
}
