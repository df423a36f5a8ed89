// The virtio-net header on our writes (checksum offload and TSO): read off the
// packet just written, for TCP and UDP over IPv4 and IPv6; and the partial
// checksum the writers leave, completed as the kernel completes it
// (skb_checksum_help: sum from csum_start, complement at csum_offset), gives
// the packet the full-checksum writer gives.
import t from 'tap';
import { ACK, FIN, PSH, type OutSegment } from '../../../../src/stack/contracts.js';
import { checksum } from '../../../../src/stack/wire/checksum.js';
import { writeUdpDatagram } from '../../../../src/stack/wire/datagram-writer.js';
import { Ip6Table } from '../../../../src/stack/wire/ip6-table.js';
import { writeTcpSegment } from '../../../../src/stack/wire/segment-writer.js';
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP_L4,
  VNET_HDR_LEN,
  newVnetHdr,
  readVnetHdr,
  writeVnetHdr,
  writeVnetHdrPartial,
} from '../../../../src/stack/wire/virtio-net-hdr.js';
import { parseIpv4, parseIpv6Into } from '../../../../src/net/address.js';
import { outSegment } from '../../../helpers/out-segment.js';

const ip6 = new Ip6Table();
const id6 = (text: string) => {
  const b = Buffer.alloc(16);
  parseIpv6Into(text, b, 0);
  return ip6.intern(b, 0);
};
const ADDR = {
  4: [parseIpv4('192.0.2.1')!, parseIpv4('203.0.113.10')!],
  6: [id6('2001:db8::1'), id6('2001:db8:1::10')],
} as const;

function payload(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

function seg(data: Buffer, o: Partial<OutSegment> = {}): OutSegment {
  return outSegment({ flags: ACK | PSH, seq: 1000, ack: 2000, window: 500, data, ...o });
}

/** What the kernel does with NEEDS_CSUM: the sum from csum_start on, its complement stored at csum_offset. */
function complete(pkt: Buffer, len: number, hdr: Buffer): Buffer {
  const h = newVnetHdr();
  readVnetHdr(hdr, 0, VNET_HDR_LEN, h);
  const out = Buffer.from(pkt.subarray(0, len));
  const at = h.csumStart + h.csumOffset;
  let ck = checksum(out, h.csumStart, len - h.csumStart);
  if (ck === 0 && h.csumOffset === 6) ck = 0xffff; // UDP: a computed 0 goes out as all ones
  out.writeUInt16BE(ck, at);
  return out;
}

t.test('the header for each kind of packet we write (table)', async (t) => {
  const rows: {
    name: string;
    family: 4 | 6;
    proto: 'tcp' | 'udp';
    ts: boolean;
    data: number;
    gso: number;
    want: { gsoType: number; hdrLen: number; gsoSize: number; csumStart: number; csumOffset: number };
  }[] = [
    {
      name: 'TCPv4 TSO segment, timestamps',
      family: 4,
      proto: 'tcp',
      ts: true,
      data: 44 * 1448,
      gso: 1448,
      want: { gsoType: VNET_GSO_TCPV4, hdrLen: 20 + 32, gsoSize: 1448, csumStart: 20, csumOffset: 16 },
    },
    {
      name: 'TCPv6 TSO segment, timestamps',
      family: 6,
      proto: 'tcp',
      ts: true,
      data: 10 * 1428,
      gso: 1428,
      want: { gsoType: VNET_GSO_TCPV6, hdrLen: 40 + 32, gsoSize: 1428, csumStart: 40, csumOffset: 16 },
    },
    {
      name: 'TCPv4 TSO, no options, odd tail',
      family: 4,
      proto: 'tcp',
      ts: false,
      data: 3 * 1460 + 17,
      gso: 1460,
      want: { gsoType: VNET_GSO_TCPV4, hdrLen: 40, gsoSize: 1460, csumStart: 20, csumOffset: 16 },
    },
    {
      name: 'TCPv4 one MSS: partial checksum only',
      family: 4,
      proto: 'tcp',
      ts: true,
      data: 1448,
      gso: 1448,
      want: { gsoType: VNET_GSO_NONE, hdrLen: 52, gsoSize: 0, csumStart: 20, csumOffset: 16 },
    },
    { name: 'TCPv6 pure ACK', family: 6, proto: 'tcp', ts: true, data: 0, gso: 1428, want: { gsoType: VNET_GSO_NONE, hdrLen: 72, gsoSize: 0, csumStart: 40, csumOffset: 16 } },
    {
      name: 'TCPv4 no gso size (a SYN-ACK, a RST)',
      family: 4,
      proto: 'tcp',
      ts: false,
      data: 3000,
      gso: 0,
      want: { gsoType: VNET_GSO_NONE, hdrLen: 40, gsoSize: 0, csumStart: 20, csumOffset: 16 },
    },
    { name: 'UDPv4 datagram', family: 4, proto: 'udp', ts: false, data: 1200, gso: 0, want: { gsoType: VNET_GSO_NONE, hdrLen: 28, gsoSize: 0, csumStart: 20, csumOffset: 6 } },
    { name: 'UDPv6 datagram', family: 6, proto: 'udp', ts: false, data: 1, gso: 0, want: { gsoType: VNET_GSO_NONE, hdrLen: 48, gsoSize: 0, csumStart: 40, csumOffset: 6 } },
    {
      name: 'UDPv6 several datagrams in one (USO)',
      family: 6,
      proto: 'udp',
      ts: false,
      data: 4 * 1200,
      gso: 1200,
      want: { gsoType: VNET_GSO_UDP_L4, hdrLen: 48, gsoSize: 1200, csumStart: 40, csumOffset: 6 },
    },
  ];
  for (const r of rows) {
    const [src, dst] = ADDR[r.family];
    const data = payload(r.data);
    const pkt = Buffer.alloc(70_000);
    const len =
      r.proto === 'tcp'
        ? writeTcpSegment(pkt, src, dst, 443, 50000, seg(data, r.ts ? { tsVal: 77, tsEcr: 88 } : {}), ip6, true)
        : writeUdpDatagram(pkt, src, dst, 53, 50000, data, 0, data.length, ip6, true);
    const hdr = Buffer.alloc(VNET_HDR_LEN, 0xee);
    writeVnetHdrPartial(hdr, 0, pkt, len, r.gso);
    const h = newVnetHdr();
    t.ok(readVnetHdr(hdr, 0, VNET_HDR_LEN, h));
    t.same(h, { flags: VNET_F_NEEDS_CSUM, ...r.want }, r.name);
    t.equal(len, r.want.hdrLen + r.data, `${r.name}: hdr_len is every header byte`);
  }
});

t.test('writeVnetHdr puts every field at its offset, little-endian', async (t) => {
  const b = Buffer.alloc(12, 0xee);
  writeVnetHdr(b, 1, { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_TCPV4, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16 });
  t.same([...b], [0xee, 0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00, 0xee]);
});

t.test('a partial checksum, completed as the kernel does, is the full one (TCP and UDP, both families)', async (t) => {
  for (const family of [4, 6] as const) {
    const [src, dst] = ADDR[family];
    for (const n of [0, 1, 2, 1447, 1448, 3 * 1448 + 5, 65_000]) {
      const data = payload(n);
      const full = Buffer.alloc(70_000);
      const part = Buffer.alloc(70_000);
      const s = seg(data, { tsVal: 5, tsEcr: 6, flags: ACK | PSH | FIN });
      const len = writeTcpSegment(full, src, dst, 443, 50000, s, ip6);
      t.equal(writeTcpSegment(part, src, dst, 443, 50000, s, ip6, true), len);
      const hdr = Buffer.alloc(VNET_HDR_LEN);
      writeVnetHdrPartial(hdr, 0, part, len, 1448);
      // from the transport header on (an IPv4 header's identification differs between two writes)
      const ipLen = family === 4 ? 20 : 40;
      t.ok(complete(part, len, hdr).subarray(ipLen).equals(full.subarray(ipLen, len)), `TCPv${family}, ${n} bytes`);
      if (n > 65_000 - 48) continue;
      const ulen = writeUdpDatagram(full, src, dst, 53, 50000, data, 0, n, ip6);
      t.equal(writeUdpDatagram(part, src, dst, 53, 50000, data, 0, n, ip6, true), ulen);
      writeVnetHdrPartial(hdr, 0, part, ulen, 0);
      t.ok(complete(part, ulen, hdr).subarray(ipLen).equals(full.subarray(ipLen, ulen)), `UDPv${family}, ${n} bytes`);
    }
  }
});
