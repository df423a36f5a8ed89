// The virtio-net header in front of each packet of an IFF_VNET_HDR TUN:
// little-endian fields at the offsets Linux uses (include/uapi/linux/virtio_net.h).
import t from 'tap';
import {
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_HDR_LEN,
  checksumVouched,
  isGso,
  newVnetHdr,
  readVnetHdr,
  writeVnetHdrNone,
} from '../../../../src/stack/wire/virtio-net-hdr.js';

t.test('a TSO header as the kernel writes it: every field at its offset, little-endian', async (t) => {
  // flags NEEDS_CSUM, gso TCPV4, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16
  const b = Buffer.from([0xaa, 0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00, 0x45]).subarray(1);
  const h = newVnetHdr();
  t.ok(readVnetHdr(b, 0, b.length, h));
  t.same(h, { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16 });
  t.ok(checksumVouched(h), 'a partial checksum is not summed again');
  t.ok(isGso(h));
  t.equal(b[VNET_HDR_LEN], 0x45, 'the IP header follows the 10 bytes');
});

t.test('flags and GSO types', async (t) => {
  const h = newVnetHdr();
  t.notOk(checksumVouched(h), 'no flag: verified by us (a packet from elsewhere)');
  h.flags = VNET_F_DATA_VALID;
  t.ok(checksumVouched(h), 'DATA_VALID: the kernel verified it');
  t.notOk(isGso(h));
  h.gsoType = VNET_GSO_NONE | VNET_GSO_ECN;
  t.notOk(isGso(h), 'ECN alone is no segmentation');
  h.gsoType = VNET_GSO_TCPV6 | VNET_GSO_ECN;
  t.ok(isGso(h));
});

t.test('short input and the header we write', async (t) => {
  const h = newVnetHdr();
  t.notOk(readVnetHdr(Buffer.alloc(9), 0, 9, h), 'fewer than 10 bytes: no header');
  const b = Buffer.alloc(14, 0xff);
  writeVnetHdrNone(b, 2);
  t.same([...b], [0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 'ten zero bytes: no offload asked, nothing else touched');
  t.ok(readVnetHdr(b, 2, 12, h));
  t.same(h, newVnetHdr());
});
