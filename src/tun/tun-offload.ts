// Which offloads a TUN gets: the fd must have been opened with IFF_VNET_HDR;
// then the kernel is asked for checksum offload, TSO for both families and
// UDP segmentation (Linux 6.2+), and on a refusal for less, down to the
// header alone (still useful: the kernel says which packets it checksummed).
// An fd inherited from another process is probed the same way: TUNGETIFF
// says whether it carries the header, and TUNSETOFFLOAD needs no privilege.
import type { TunAddon } from './native-addon.js';
import { NO_OFFLOAD, txOffload, type TunOffload } from './tun-device.js';

/** The virtio-net header without the num_buffers field (struct virtio_net_hdr). */
export const VNET_HDR_LEN = 10;

/** The TUN_F_* combinations to try, most first. */
function attempts(a: TunAddon): { flags: number; offload: TunOffload }[] {
  const tcp = a.TUN_F_CSUM | a.TUN_F_TSO4 | a.TUN_F_TSO6;
  const on = { vnetHdrLen: VNET_HDR_LEN, csum: true, tso4: true, tso6: true };
  return [
    { flags: tcp | a.TUN_F_USO4 | a.TUN_F_USO6, offload: { ...on, uso: true } },
    { flags: tcp, offload: { ...on, uso: false } },
    { flags: a.TUN_F_CSUM, offload: { ...NO_OFFLOAD, vnetHdrLen: VNET_HDR_LEN, csum: true } },
    { flags: 0, offload: { ...NO_OFFLOAD, vnetHdrLen: VNET_HDR_LEN } },
  ];
}

/**
 * The offloads of a TUN fd: none when it was opened without IFF_VNET_HDR;
 * else the most this kernel accepts, now in force.
 */
export function enableOffloads(a: TunAddon, fd: number): TunOffload {
  if ((a.tunFlags(fd) & a.IFF_VNET_HDR) === 0) return NO_OFFLOAD;
  a.tunSetVnetHdrSize(fd, VNET_HDR_LEN);
  for (const { flags, offload } of attempts(a)) if (a.tunSetOffload(fd, flags)) return offload;
  return { ...NO_OFFLOAD, vnetHdrLen: VNET_HDR_LEN };
}

/**
 * For logs and status: the offloads in force, [] when none. Read side (what
 * the kernel hands us): 'csum', 'tso4', 'tso6', 'uso' (UDP GSO packets, which
 * the stack splits back into their datagrams); write side (what we hand it:
 * partial checksums, TSO segments, UDP replies merged into UDP GSO packets):
 * 'tx_csum', 'tx_tso4', 'tx_tso6', 'tx_uso' (docs/DECISIONS.md, "USO").
 */
export function offloadNames(o: TunOffload | undefined): string[] {
  if (!o || o.vnetHdrLen === 0) return [];
  const tx = txOffload(o);
  return [...(['csum', 'tso4', 'tso6', 'uso'] as const).filter((k) => o[k]), ...(['csum', 'tso4', 'tso6', 'uso'] as const).filter((k) => tx[k]).map((k) => `tx_${k}`)];
}
