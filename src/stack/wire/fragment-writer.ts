// Contract: splits one whole IPv4 or IPv6 packet (our own, built in a scratch
// buffer: a 20-byte IPv4 header without options, or a 40-byte IPv6 header
// followed directly by the upper layer) into fragments that fit the MTU, as
// the sending host would (RFC 791 §3.2, RFC 8200 §4.5): every fragment but the
// last carries a multiple of 8 bytes; IPv4 fragments keep the packet's id,
// with DF cleared and MF on all but the last; IPv6 ones get a Fragment header
// with the caller's identification. Each fragment is written into a TX slot
// by writeFragment; no allocation.
import { checksum } from './checksum.js';

const FRAGMENT = 44;

/** Payload bytes per fragment (a multiple of 8) for this MTU. */
export function fragmentPayload(mtu: number, v6: boolean): number {
  return ((mtu - (v6 ? 48 : 20)) >> 3) << 3;
}

/**
 * Writes the fragment of `whole` whose payload starts at payload
 * offset `at` (a multiple of 8) into slot; returns its length. more: not the last.
 */
export function writeFragment(slot: Buffer, whole: Buffer, at: number, chunk: number, more: boolean, v6: boolean, id: number): number {
  if (!v6) {
    whole.copy(slot, 0, 0, 20);
    slot.writeUInt16BE(20 + chunk, 2);
    slot.writeUInt16BE((more ? 0x2000 : 0) | (at >> 3), 6); // DF cleared: this is a fragment
    slot.writeUInt16BE(0, 10);
    slot.writeUInt16BE(checksum(slot, 0, 20), 10);
    whole.copy(slot, 20, 20 + at, 20 + at + chunk);
    return 20 + chunk;
  }
  whole.copy(slot, 0, 0, 40);
  slot.writeUInt16BE(8 + chunk, 4);
  slot[6] = FRAGMENT;
  slot[40] = whole[6]; // the upper layer's protocol
  slot[41] = 0;
  slot.writeUInt16BE(at | (more ? 1 : 0), 42);
  slot.writeUInt32BE(id >>> 0, 44);
  whole.copy(slot, 48, 40 + at, 40 + at + chunk);
  return 48 + chunk;
}
