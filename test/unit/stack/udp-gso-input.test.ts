// A UDP GSO packet read from a TUN with USO (virtio-net gso_type UDP_L4: a
// client sent with the UDP_SEGMENT socket option): the stack hands it up as
// its datagrams, gso_size bytes each and the last shorter, IPv4 and IPv6, the
// checksum vouched as for any offloaded packet; a header that does not fit the
// packet is dropped and counted, and leaves nothing behind for the next one.
import t from 'tap';
import { Stack } from '../../../src/stack/stack.js';
import { MemoryTun } from '../../../src/tun/memory-tun.js';
import { Drop } from '../../../src/stack/drop-counters.js';
import { Ip6Table } from '../../../src/stack/wire/ip6-table.js';
import { writeUdpDatagram } from '../../../src/stack/wire/datagram-writer.js';
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_TCPV4,
  VNET_GSO_UDP_L4,
  VNET_HDR_LEN,
  checksumVouched,
  newVnetHdr,
  readVnetHdr,
  udpGsoSize,
  writeVnetHdr,
  type VnetHdr,
} from '../../../src/stack/wire/virtio-net-hdr.js';
import { checksum } from '../../../src/stack/wire/checksum.js';
import { parseIpv4, parseIpv6Into } from '../../../src/net/address.js';
import type { UdpFlowKey } from '../../../src/stack/contracts.js';

const C4 = parseIpv4('192.0.2.1')!;
const S4 = parseIpv4('203.0.113.10')!;
const table = new Ip6Table();
const id6 = (text: string) => {
  const b = Buffer.alloc(16);
  parseIpv6Into(text, b, 0);
  return table.intern(b, 0);
};
const C6 = id6('2001:db8:1::2');
const S6 = id6('2001:db8:2::10');

function payload(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return b;
}

/**
 * A frame as the TUN hands it over: the virtio-net header the kernel writes for
 * a UDP_SEGMENT send (NEEDS_CSUM, UDP_L4, gso_size; hdr_len the linear part,
 * here the whole packet), then one IP packet whose UDP header and partial
 * checksum cover the whole payload (Linux udp_send_skb).
 */
function gsoFrame(v6: boolean, data: Buffer, gsoSize: number, over: Partial<VnetHdr> = {}): Buffer {
  const b = Buffer.alloc(VNET_HDR_LEN + 70_000);
  const n = writeUdpDatagram(b.subarray(VNET_HDR_LEN), v6 ? C6 : C4, v6 ? S6 : S4, 5000, 443, data, 0, data.length, table, true);
  const ipLen = v6 ? 40 : 20;
  writeVnetHdr(b, 0, { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_UDP_L4, hdrLen: n, gsoSize, csumStart: ipLen, csumOffset: 6, ...over });
  return b.subarray(0, VNET_HDR_LEN + n);
}

/** The frame's IPv4 header checksum made right again after an edit. */
function ipv4Checksum(f: Buffer): Buffer {
  f.writeUInt16BE(0, VNET_HDR_LEN + 10);
  f.writeUInt16BE(checksum(f, VNET_HDR_LEN, 20), VNET_HDR_LEN + 10);
  return f;
}

/** A stack whose UDP handler records every datagram (copied), fed as tun-stack.ts feeds it. */
function gsoStack() {
  const got: { key: UdpFlowKey; data: Buffer }[] = [];
  const stack = new Stack(new MemoryTun({ mtu: 1500 }), () => {}, {
    udp: { onDatagram: (key, b, o, l) => (got.push({ key: { ...key }, data: Buffer.from(b.subarray(o, o + l)) }), true) },
  });
  const vh = newVnetHdr();
  const read = (frame: Buffer) => {
    readVnetHdr(frame, 0, frame.length, vh);
    stack.input(frame, VNET_HDR_LEN, frame.length - VNET_HDR_LEN, 1, checksumVouched(vh), udpGsoSize(vh, frame.length - VNET_HDR_LEN));
  };
  return { stack, got, read };
}

const SPLITS = [
  { name: '20 x 1200, the last 500', total: 19 * 1200 + 500, gso: 1200, sizes: [...Array(19).fill(1200), 500] },
  { name: '8 x 1000, the last as long', total: 8000, gso: 1000, sizes: Array(8).fill(1000) },
  { name: '7 x 8000 (over the MTU: a 65520 TUN), the last 3001', total: 6 * 8000 + 3001, gso: 8000, sizes: [...Array(6).fill(8000), 3001] },
  { name: '64 x 1 byte', total: 64, gso: 1, sizes: Array(64).fill(1) },
  { name: 'no more than gso_size: one datagram', total: 700, gso: 1200, sizes: [700] },
  { name: 'empty: one empty datagram', total: 0, gso: 1200, sizes: [0] },
];

for (const v6 of [false, true]) {
  const fam = v6 ? 'IPv6' : 'IPv4';
  for (const c of SPLITS) {
    t.test(`${fam}: ${c.name}: one datagram per piece, byte-exact, in order`, async (t) => {
      const { stack, got, read } = gsoStack();
      const data = payload(c.total, c.total + 1);
      read(gsoFrame(v6, data, c.gso));
      t.same(
        got.map((g) => g.data.length),
        c.sizes,
        'the sizes',
      );
      t.ok(Buffer.concat(got.map((g) => g.data)).equals(data), 'the bytes, in order');
      t.ok(
        got.every((g) => g.key.clientPort === 5000 && g.key.serverPort === 443 && g.key.clientIp === (v6 ? got[0].key.clientIp : C4)),
        'each with the flow key',
      );
      t.equal(stack.counters.udpDatagrams, c.sizes.length);
      t.equal(stack.counters.udpGsoPackets, 1);
      t.equal(stack.counters.udpGsoDatagrams, c.sizes.length);
      t.equal(stack.drops.total(), 0, 'nothing dropped: the partial checksum is vouched for');
    });
  }

  t.test(`${fam}: GSO with ECN set splits the same`, async (t) => {
    const { got, read } = gsoStack();
    read(gsoFrame(v6, payload(3000, 7), 1000, { gsoType: VNET_GSO_UDP_L4 | VNET_GSO_ECN }));
    t.same(
      got.map((g) => g.data.length),
      [1000, 1000, 1000],
    );
  });

  const BAD: { name: string; frame: () => Buffer; drop: number }[] = [
    { name: 'gso_size 0', frame: () => gsoFrame(v6, payload(3000, 1), 0), drop: Drop.udp_bad_gso },
    { name: 'hdr_len past the end', frame: () => gsoFrame(v6, payload(3000, 1), 1000, { hdrLen: 5000 }), drop: Drop.udp_bad_gso },
    { name: "the checksum's place past the end", frame: () => gsoFrame(v6, payload(3000, 1), 1000, { csumStart: 3100 }), drop: Drop.udp_bad_gso },
    {
      name: 'a TCP packet under a UDP_L4 header',
      frame: () => {
        const f = gsoFrame(v6, payload(100, 1), 40);
        f[VNET_HDR_LEN + (v6 ? 6 : 9)] = 6;
        return v6 ? f : ipv4Checksum(f);
      },
      drop: Drop.udp_bad_gso,
    },
    {
      name: 'not vouched (no NEEDS_CSUM): the partial checksum is summed and fails',
      frame: () => gsoFrame(v6, payload(3000, 1), 1000, { flags: 0 }),
      drop: Drop.udp_bad_checksum,
    },
  ];
  if (!v6)
    BAD.push({
      name: 'an IPv4 fragment under a UDP_L4 header',
      frame: () => {
        const f = gsoFrame(v6, payload(3000, 1), 1000);
        f.writeUInt16BE(0x2000, VNET_HDR_LEN + 6); // MF
        return ipv4Checksum(f);
      },
      drop: Drop.udp_bad_gso,
    });
  for (const b of BAD) {
    t.test(`${fam}: ${b.name}: dropped and counted, never thrown; the next packet is read as usual`, async (t) => {
      const { stack, got, read } = gsoStack();
      t.doesNotThrow(() => read(b.frame()));
      t.equal(got.length, 0, 'nothing handed up');
      t.equal(stack.drops.get(b.drop), 1, 'counted under its reason');
      t.equal(stack.drops.total(), 1, 'one drop');
      read(gsoFrame(v6, payload(2500, 2), 1000));
      t.same(
        got.map((g) => g.data.length),
        [1000, 1000, 500],
        'a good GSO packet after it splits',
      );
      const plain = gsoFrame(v6, payload(2500, 3), 0, { gsoType: 0 });
      read(plain);
      t.equal(got.length, 4, 'a plain packet after it is one datagram: no GSO state left behind');
    });
  }
}

t.test('udpGsoSize: what a header says of UDP segmentation', async (t) => {
  const rows: [string, Partial<VnetHdr>, number, number][] = [
    ['no GSO', {}, 1500, 0],
    ['TCPv4 TSO is not UDP', { gsoType: VNET_GSO_TCPV4, gsoSize: 1448 }, 60_000, 0],
    ['UDP_L4', { gsoType: VNET_GSO_UDP_L4, gsoSize: 1200, hdrLen: 28 }, 24_028, 1200],
    ['UDP_L4 with ECN', { gsoType: VNET_GSO_UDP_L4 | VNET_GSO_ECN, gsoSize: 1200 }, 24_028, 1200],
    ['gso_size 0', { gsoType: VNET_GSO_UDP_L4, gsoSize: 0 }, 24_028, -1],
    ['hdr_len past the end', { gsoType: VNET_GSO_UDP_L4, gsoSize: 1200, hdrLen: 24_029 }, 24_028, -1],
    ['hdr_len the whole packet (the linear part)', { gsoType: VNET_GSO_UDP_L4, gsoSize: 1200, hdrLen: 24_028 }, 24_028, 1200],
    ['partial checksum past the end', { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_UDP_L4, gsoSize: 1200, csumStart: 24_022, csumOffset: 6 }, 24_028, -1],
    ['partial checksum at the UDP header', { flags: VNET_F_NEEDS_CSUM, gsoType: VNET_GSO_UDP_L4, gsoSize: 1200, csumStart: 20, csumOffset: 6 }, 24_028, 1200],
  ];
  for (const [name, h, len, want] of rows) t.equal(udpGsoSize({ ...newVnetHdr(), ...h }, len), want, name);
});

t.test('20,000 seeded frames with random UDP_L4 headers over good and mangled packets: nothing throws, each is dropped or handed up', async (t) => {
  let x = 20261207;
  const rnd = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
  const { stack, got, read } = gsoStack();
  let handedUp = 0;
  const thrown: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const v6 = rnd(2) === 1;
    const len = rnd(4000);
    const f = gsoFrame(v6, payload(len, i), rnd(4) === 0 ? 0 : 1 + rnd(1500), {
      ...(rnd(3) === 0 ? { hdrLen: rnd(65_536) } : {}),
      ...(rnd(3) === 0 ? { csumStart: rnd(65_536) } : {}),
      ...(rnd(3) === 0 ? { csumOffset: rnd(65_536) } : {}),
      ...(rnd(4) === 0 ? { flags: rnd(256) } : {}),
    });
    // now and then a byte of the packet changed, or the packet cut short
    if (rnd(3) === 0) f[VNET_HDR_LEN + rnd(f.length - VNET_HDR_LEN)] = rnd(256);
    const frame = rnd(5) === 0 ? f.subarray(0, VNET_HDR_LEN + rnd(f.length - VNET_HDR_LEN)) : f;
    const before = got.length;
    try {
      read(frame);
    } catch (e) {
      thrown.push(`frame ${i}: ${(e as Error).message}`);
    }
    handedUp += got.length > before ? 1 : 0;
    got.length = 0;
  }
  t.same(thrown.slice(0, 3), [], 'nothing thrown');
  const drops = stack.drops.total();
  t.equal(stack.counters.packetsIn, 20_000);
  t.equal(handedUp + drops, 20_000, `every frame handed up (${handedUp}) or dropped once (${drops}: ${stack.drops.get(Drop.udp_bad_gso)} udp_bad_gso)`);
  t.ok(handedUp > 1000 && stack.drops.get(Drop.udp_bad_gso) > 1000, 'both kinds seen');
});
