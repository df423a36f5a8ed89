// Who holds a connection's socket, from the kernel: one inet_diag request
// (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, linux/inet_diag.h) for the exact
// four-tuple, answered with the socket's uid and inode. The socket is the
// client's (its local end is the connection's source); the kernel answers
// while the write runs, so write and read are one synchronous round trip of
// some microseconds, with no file or process walked.
import { readSync, writeSync, closeSync } from 'node:fs';
import { isIP } from 'node:net';
import { loadTunAddon } from '../tun/native-addon.js';
import { addressBytes } from '../net/cidr.js';

const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLMSG_ERROR = 2;
const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const REQ_LEN = 16 + 56; // nlmsghdr + inet_diag_req_v2
/** In the answer: nlmsghdr, then inet_diag_msg's uid (offset 64) and inode (68). */
const UID_AT = 16 + 64;
const INODE_AT = 16 + 68;

export interface SocketOwner {
  uid: number;
  inode: number;
}

export interface FourTuple {
  /** The client socket's own end: the connection's source. */
  local: { address: string; port: number };
  /** Its peer: the connection's original destination. */
  remote: { address: string; port: number };
}

/** Why a lookup found nothing, in the words a log line uses. */
export type DiagMiss = 'no-socket' | 'closed' | 'not-an-address' | 'no-answer';

export class SockDiag {
  private fd: number;
  private seq = 1;
  private readonly req = Buffer.alloc(REQ_LEN);
  private readonly res = Buffer.alloc(8192);

  /** netns: ask about that namespace's sockets (a path such as /run/netns/NAME). */
  constructor(netns?: string) {
    this.fd = loadTunAddon().sockDiagOpen(netns);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** The uid and inode of the socket with this four-tuple, or why there is none. */
  lookup(proto: 'tcp' | 'udp', t: FourTuple): SocketOwner | DiagMiss {
    const local = addressBytes(t.local.address);
    const remote = addressBytes(t.remote.address);
    if (!local || !remote || this.fd < 0) return 'not-an-address';
    // an IPv4 connection to an IPv6 address (or back) cannot be one socket's
    const v6 = local.length === 16 || remote.length === 16;
    const r = this.req;
    r.fill(0);
    r.writeUInt32LE(REQ_LEN, 0);
    r.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    r.writeUInt16LE(NLM_F_REQUEST, 6);
    const seq = (this.seq = (this.seq + 1) >>> 0);
    r.writeUInt32LE(seq, 8);
    r[16] = v6 ? AF_INET6 : AF_INET;
    r[17] = proto === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
    r.writeUInt32LE(0xffffffff, 20); // every state
    // inet_diag_sockid at 24. TCP looks a socket up as the receiver of a packet from dst to src
    // (inet_diag_find_one_icsk), UDP as the receiver of one from src to dst (udp_dump_one):
    // the client socket's own end goes where each expects the receiver.
    const [src, sport, dst, dport] = proto === 'tcp' ? [local, t.local.port, remote, t.remote.port] : [remote, t.remote.port, local, t.local.port];
    r.writeUInt16BE(sport, 24);
    r.writeUInt16BE(dport, 26);
    putAddress(r, 28, src, v6);
    putAddress(r, 44, dst, v6);
    r.writeUInt32LE(0xffffffff, 64); // INET_DIAG_NOCOOKIE
    r.writeUInt32LE(0xffffffff, 68);
    try {
      writeSync(this.fd, r, 0, REQ_LEN);
      for (;;) {
        const n = readSync(this.fd, this.res, 0, this.res.length, null);
        if (n < 16) return 'no-answer';
        if (this.res.readUInt32LE(8) !== seq) continue; // an answer to an earlier, abandoned request
        if (this.res.readUInt16LE(4) === NLMSG_ERROR) return 'no-socket';
        if (n < INODE_AT + 4) return 'no-answer';
        const inode = this.res.readUInt32LE(INODE_AT);
        // TIME-WAIT and orphaned sockets (closed by their program) have no inode, and uid 0: nobody owns them
        if (inode === 0) return 'closed';
        return { uid: this.res.readUInt32LE(UID_AT), inode };
      }
    } catch {
      return 'no-answer';
    }
  }
}

/** 4 bytes as such, or as IPv4-mapped IPv6 in a v6 request; 16 bytes as such. */
function putAddress(b: Buffer, at: number, addr: Uint8Array, v6: boolean): void {
  if (addr.length === 16) b.set(addr, at);
  else if (!v6) b.set(addr, at);
  else {
    b.writeUInt16BE(0xffff, at + 10);
    b.set(addr, at + 12);
  }
}

export const isAddress = (s: string) => isIP(s) !== 0;
