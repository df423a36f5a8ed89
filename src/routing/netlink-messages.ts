// rtnetlink messages as the kernel multicasts them (RTMGRP_LINK, _IPV4_IFADDR,
// _IPV4_ROUTE, _IPV6_IFADDR, _IPV6_ROUTE), parsed into plain events. PURE:
// bytes in, events out; a malformed message is skipped, never thrown.
// Layouts: include/uapi/linux/netlink.h (nlmsghdr), rtnetlink.h (rtmsg, rtattr),
// if_link.h (ifinfomsg), if_addr.h (ifaddrmsg); host byte order (little-endian here).

export const RTMGRP = { LINK: 0x1, IPV4_IFADDR: 0x10, IPV4_ROUTE: 0x40, IPV6_IFADDR: 0x100, IPV6_ROUTE: 0x400 } as const;
/** Everything the network watcher listens to. */
export const WATCH_GROUPS = RTMGRP.LINK | RTMGRP.IPV4_IFADDR | RTMGRP.IPV4_ROUTE | RTMGRP.IPV6_IFADDR | RTMGRP.IPV6_ROUTE;

const NLMSG_HDRLEN = 16;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_NEWROUTE = 24;
const RTM_DELROUTE = 25;
const AF_INET = 2;
const AF_INET6 = 10;
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;
const IFLA_IFNAME = 3;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_TABLE = 15;
/** The main routing table (RT_TABLE_MAIN). */
export const TABLE_MAIN = 254;

export type NetEvent =
  | { kind: 'link'; op: 'new' | 'del'; index: number; name?: string; up: boolean }
  | { kind: 'addr'; op: 'new' | 'del'; family: 4 | 6; index: number; address?: string; prefixlen: number }
  | { kind: 'route'; op: 'new' | 'del'; family: 4 | 6; table: number; dstLen: number; dst?: string; gateway?: string; oif?: number; type: number };

const align4 = (n: number) => (n + 3) & ~3;

/** rtattrs from off to end: type -> [start, length] of the payload (the last of a type wins). */
function attrs(b: Buffer, off: number, end: number): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  while (off + 4 <= end) {
    const len = b.readUInt16LE(off);
    if (len < 4 || off + len > end) break;
    out.set(b.readUInt16LE(off + 2) & 0x3fff, [off + 4, len - 4]); // NLA_F_NESTED / NET_BYTEORDER masked
    off += align4(len);
  }
  return out;
}

function addressText(b: Buffer, at: [number, number] | undefined, family: number): string | undefined {
  if (!at) return undefined;
  const [o, n] = at;
  if (family === AF_INET && n === 4) return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
  if (family === AF_INET6 && n === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(o + i).toString(16));
    return compress6(groups);
  }
  return undefined;
}

/** RFC 5952 §4.2: the longest run of two or more zero groups becomes "::" (the first such run on ties). */
function compress6(g: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return g.join(':');
  return `${g.slice(0, best).join(':')}::${g.slice(best + bestLen).join(':')}`;
}

function parseOne(b: Buffer, off: number, len: number): NetEvent | null {
  const type = b.readUInt16LE(off + 4);
  const body = off + NLMSG_HDRLEN;
  const end = off + len;
  const op = type % 2 === 0 ? 'new' : 'del';
  if (type === RTM_NEWLINK || type === RTM_DELLINK) {
    if (end - body < 16) return null;
    const a = attrs(b, body + 16, end);
    const flags = b.readUInt32LE(body + 8);
    const nameAt = a.get(IFLA_IFNAME);
    const name = nameAt ? b.toString('utf8', nameAt[0], nameAt[0] + nameAt[1]).replace(/\0.*$/s, '') : undefined;
    return { kind: 'link', op, index: b.readInt32LE(body + 4), ...(name !== undefined ? { name } : {}), up: (flags & IFF_UP) !== 0 && (flags & IFF_RUNNING) !== 0 };
  }
  if (type === RTM_NEWADDR || type === RTM_DELADDR) {
    if (end - body < 8) return null;
    const fam = b[body];
    if (fam !== AF_INET && fam !== AF_INET6) return null;
    const a = attrs(b, body + 8, end);
    // IFA_LOCAL is the address itself on point-to-point links, where IFA_ADDRESS is the peer's
    const address = addressText(b, a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS), fam);
    return { kind: 'addr', op, family: fam === AF_INET ? 4 : 6, index: b.readUInt32LE(body + 4), ...(address !== undefined ? { address } : {}), prefixlen: b[body + 1] };
  }
  if (type === RTM_NEWROUTE || type === RTM_DELROUTE) {
    if (end - body < 12) return null;
    const fam = b[body];
    if (fam !== AF_INET && fam !== AF_INET6) return null;
    const a = attrs(b, body + 12, end);
    const tableAt = a.get(RTA_TABLE);
    const oifAt = a.get(RTA_OIF);
    const dst = addressText(b, a.get(RTA_DST), fam);
    const gateway = addressText(b, a.get(RTA_GATEWAY), fam);
    return {
      kind: 'route',
      op,
      family: fam === AF_INET ? 4 : 6,
      // rtm_table holds only 8 bits; RTA_TABLE the full number
      table: tableAt && tableAt[1] === 4 ? b.readUInt32LE(tableAt[0]) : b[body + 4],
      dstLen: b[body + 1],
      ...(dst !== undefined ? { dst } : {}),
      ...(gateway !== undefined ? { gateway } : {}),
      ...(oifAt && oifAt[1] === 4 ? { oif: b.readUInt32LE(oifAt[0]) } : {}),
      type: b[body + 7],
    };
  }
  return null; // NLMSG_NOOP, _DONE, _ERROR, and types we did not subscribe to
}

/** Every event in one read()'s bytes (a datagram may hold several messages). */
export function parseNetlink(b: Buffer, length = b.length): NetEvent[] {
  const out: NetEvent[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= length) {
    const len = b.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > length) break;
    const e = parseOne(b, off, len);
    if (e) out.push(e);
    off += align4(len);
  }
  return out;
}

/**
 * Whether an event can change the uplink: a default route of the main table,
 * any address, any link state (IPv4 routes of a link that goes down are
 * flushed without an RTM_DELROUTE of their own). The TUN's own events and
 * routes in other tables (the gateway's own table) are not.
 */
export function concernsUplink(e: NetEvent, tun: { index?: number; name?: string }): boolean {
  if (e.kind === 'link') return e.index !== tun.index && (e.name === undefined || e.name !== tun.name);
  if (e.kind === 'addr') return e.index !== tun.index;
  return e.table === TABLE_MAIN && e.dstLen === 0 && e.oif !== tun.index;
}
