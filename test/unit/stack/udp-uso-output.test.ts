// USO on write: the UDP replies of one event-loop turn leave at its end, and
// where the TUN has USO, consecutive same-size replies of one flow (the last
// may be shorter) go as one UDP GSO packet. Checked by splitting what the
// stack wrote as the kernel would (test/helpers/gso-split.ts, which completes
// the partial checksum as __udp_gso_segment does) and verifying each
// datagram on its own: addresses, ports, lengths, checksum, bytes in order.
import t, { type Test } from 'tap';
import { Stack } from '../../../src/stack/stack.js';
import { MemoryTun } from '../../../src/tun/memory-tun.js';
import { NO_OFFLOAD, type TunOffload } from '../../../src/tun/tun-device.js';
import { checksum, pseudoSum4 } from '../../../src/stack/wire/checksum.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_UDP_L4, VNET_HDR_LEN, newVnetHdr, readVnetHdr } from '../../../src/stack/wire/virtio-net-hdr.js';
import { USO_MAX_SEGMENTS, USO_MAX_UDP_LENGTH } from '../../../src/stack/udp-output.js';
import { parseIpv4, parseIpv6Into } from '../../../src/net/address.js';
import { kernelSplit } from '../../helpers/gso-split.js';

const USO: TunOffload = { vnetHdrLen: VNET_HDR_LEN, csum: true, tso4: true, tso6: true, uso: true };
const NO_USO: TunOffload = { ...USO, uso: false };

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function payload(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return b;
}

/** A stack over a MemoryTun with these offloads, its two flows' addresses per family. */
function uso(offload: TunOffload, mtu = 1500) {
  const dev = new MemoryTun({ mtu, offload });
  const stack = new Stack(dev, () => {});
  const id6 = (text: string) => {
    const b = Buffer.alloc(16);
    parseIpv6Into(text, b, 0);
    return stack.ip6.intern(b, 0);
  };
  const addr = {
    4: { server: parseIpv4('203.0.113.10')!, client: parseIpv4('198.18.0.1')! },
    6: { server: id6('2001:db8:2::10'), client: id6('2001:db8:1::2') },
  };
  return { dev, stack, addr };
}

interface Datagram {
  flow: string;
  data: Buffer;
}

/**
 * One IP packet as the client's kernel checks it: lengths, checksums. Its flow
 * and payload; null for a fragment; a string saying what is wrong.
 */
function verify(p: Buffer): Datagram | string | null {
  const v4 = p[0] >> 4 === 4;
  const u = v4 ? 20 : 40;
  if (v4) {
    if (p.readUInt16BE(2) !== p.length) return `IPv4 total length ${p.readUInt16BE(2)} for ${p.length}`;
    if (checksum(p, 0, 20) !== 0) return 'IPv4 header checksum';
    if ((p.readUInt16BE(6) & 0x3fff) !== 0) return null;
  } else {
    if (p.readUInt16BE(4) !== p.length - 40) return `IPv6 payload length ${p.readUInt16BE(4)} for ${p.length - 40}`;
    if (p[6] === 44) return null;
  }
  if ((v4 ? p[9] : p[6]) !== 17) return 'not UDP';
  const ulen = p.readUInt16BE(u + 4);
  if (ulen !== p.length - u) return `UDP length ${ulen} for ${p.length - u}`;
  let pseudo = 17 + ulen;
  if (v4) pseudo = pseudoSum4(p.readUInt32BE(12), p.readUInt32BE(16), 17, ulen);
  else for (let i = 8; i < 40; i += 2) pseudo += p.readUInt16BE(i);
  if (checksum(p, u, ulen, pseudo) !== 0) return `UDP checksum wrong in a ${ulen}-byte datagram`;
  const src = v4 ? p.subarray(12, 16) : p.subarray(8, 24);
  const dst = v4 ? p.subarray(16, 20) : p.subarray(24, 40);
  return { flow: `${src.toString('hex')}:${p.readUInt16BE(u)}>${dst.toString('hex')}:${p.readUInt16BE(u + 2)}`, data: Buffer.from(p.subarray(u + 8)) };
}

interface Frame {
  gsoType: number;
  gsoSize: number;
  hdrLen: number;
  csumStart: number;
  csumOffset: number;
  flags: number;
  datagrams: number;
}

/** What the stack wrote this turn: each frame's header, and the datagrams the client receives, in order. */
async function written(t: Test, dev: MemoryTun) {
  await turn();
  const frames: Frame[] = [];
  const got: Datagram[] = [];
  const problems: string[] = [];
  const h = newVnetHdr();
  for (const f of dev.takeTx()) {
    readVnetHdr(f, 0, f.length, h);
    const pieces = kernelSplit(f);
    frames.push({ gsoType: h.gsoType, gsoSize: h.gsoSize, hdrLen: h.hdrLen, csumStart: h.csumStart, csumOffset: h.csumOffset, flags: h.flags, datagrams: pieces.length });
    for (const p of pieces) {
      const d = verify(p);
      if (typeof d === 'string') problems.push(d);
      else if (d) got.push(d);
    }
  }
  t.same(problems, [], 'every datagram as the client would take it: lengths and checksums');
  return { frames, got };
}

interface Case {
  name: string;
  /** Datagrams in the order the relay hands them over: flow a or b, size. */
  sends: ['a' | 'b', number][];
  /** What is written, in order: datagrams per packet, or 'f' for a fragment. */
  frames: (number | 'f')[];
}

const run = (flow: 'a' | 'b', n: number, size: number, last = size): ['a' | 'b', number][] =>
  Array.from({ length: n }, (_, i) => [flow, i === n - 1 ? last : size] as ['a' | 'b', number]);

const CASES: Case[] = [
  { name: 'one datagram: itself, a partial checksum', sends: run('a', 1, 1200), frames: [1] },
  { name: '20 x 1200: one GSO packet', sends: run('a', 20, 1200), frames: [20] },
  { name: '20 x 1200, the last 500: one GSO packet', sends: run('a', 20, 1200, 500), frames: [20] },
  { name: 'a shorter one ends the run', sends: [...run('a', 3, 1200, 500), ['a', 1200], ['a', 1200]], frames: [3, 2] },
  {
    name: 'a longer one breaks it',
    sends: [
      ['a', 1000],
      ['a', 1000],
      ['a', 1200],
      ['a', 1200],
    ],
    frames: [2, 2],
  },
  { name: 'another flow breaks it, order kept per flow', sends: [...run('a', 3, 1200), ...run('b', 2, 1200), ...run('a', 2, 1200)], frames: [3, 2, 2] },
  {
    name: 'two flows with the same size alternating: nothing merged',
    sends: [
      ['a', 800],
      ['b', 800],
      ['a', 800],
      ['b', 800],
    ],
    frames: [1, 1, 1, 1],
  },
  { name: '60 x 1400: cut at 64 KiB', sends: run('a', 60, 1400), frames: [Math.floor((USO_MAX_UDP_LENGTH - 8) / 1400), 60 - Math.floor((USO_MAX_UDP_LENGTH - 8) / 1400)] },
  { name: `100 x 100: cut at ${USO_MAX_SEGMENTS} datagrams`, sends: run('a', 100, 100), frames: [USO_MAX_SEGMENTS, 100 - USO_MAX_SEGMENTS] },
  { name: '1-byte datagrams', sends: run('a', 5, 1), frames: [5] },
  {
    name: 'an empty datagram goes alone',
    sends: [
      ['a', 300],
      ['a', 0],
      ['a', 300],
      ['a', 300],
    ],
    frames: [1, 1, 2],
  },
  { name: 'one over the MTU (fragments) between two runs', sends: [...run('a', 2, 1000), ['a', 2000], ...run('a', 2, 1000)], frames: [2, 'f', 'f', 2] },
];

for (const fam of [4, 6] as const) {
  for (const c of CASES) {
    t.test(`IPv${fam}: ${c.name}`, async (t) => {
      const { dev, stack, addr } = uso(USO);
      const { server, client } = addr[fam];
      const sent: Datagram[] = [];
      let seed = 1;
      for (const [flow, size] of c.sends) {
        const data = payload(size, seed++);
        const sport = flow === 'a' ? 443 : 53;
        stack.sendUdp(server, client, sport, 40000, data, 0, size);
        sent.push({ flow, data });
      }
      t.same(dev.takeTx(), [], 'nothing leaves before the end of the turn');
      const { frames, got } = await written(t, dev);
      // a fragment: complete checksums, a zero header
      const isFragment = (f: Frame) => f.flags === 0;
      t.same(
        frames.map((f) => (isFragment(f) ? 'f' : f.datagrams)),
        c.frames,
        'datagrams per packet written',
      );
      // every datagram that fits the MTU arrives, its bytes intact, in the order sent per flow
      const fits = sent.filter((s) => s.data.length + (fam === 4 ? 28 : 48) <= 1500);
      for (const flow of ['a', 'b'] as const) {
        const port = flow === 'a' ? 443 : 53;
        t.same(
          got.filter((g) => g.flow.includes(`:${port}>`)).map((g) => g.data.toString('hex')),
          fits.filter((s) => s.flow === flow).map((s) => s.data.toString('hex')),
          `flow ${flow}: every datagram, bytes and order`,
        );
      }
      for (const f of frames) {
        if (isFragment(f)) continue;
        t.equal(f.flags, VNET_F_NEEDS_CSUM, 'NEEDS_CSUM');
        t.equal(f.csumStart, fam === 4 ? 20 : 40, 'csum_start: the UDP header');
        t.equal(f.csumOffset, 6, 'csum_offset: the UDP checksum');
        t.equal(f.hdrLen, fam === 4 ? 28 : 48, 'hdr_len: IP + UDP');
        if (f.datagrams > 1) t.equal(f.gsoType, VNET_GSO_UDP_L4, 'gso_type UDP_L4');
        else t.same([f.gsoType, f.gsoSize], [VNET_GSO_NONE, 0], 'one datagram: no GSO');
      }
      const merged = frames.filter((f) => f.datagrams > 1);
      t.equal(stack.counters.udpUsoPackets, merged.length, 'udpUsoPackets');
      t.equal(
        stack.counters.udpUsoDatagrams,
        merged.reduce((s, f) => s + f.datagrams, 0),
        'udpUsoDatagrams',
      );
    });
  }
}

t.test("gso_size is the run's datagram size", async (t) => {
  const { dev, stack, addr } = uso(USO);
  for (let i = 0; i < 5; i++) stack.sendUdp(addr[4].server, addr[4].client, 443, 40000, payload(1111, i), 0, i === 4 ? 17 : 1111);
  const { frames } = await written(t, dev);
  t.same(
    frames.map((f) => [f.gsoType, f.gsoSize, f.datagrams]),
    [[VNET_GSO_UDP_L4, 1111, 5]],
  );
});

t.test('the read side splits what the write side merged: the same datagrams', async (t) => {
  const { dev, stack, addr } = uso(USO);
  const sent = Array.from({ length: 30 }, (_, i) => payload(i === 29 ? 77 : 1300, i + 100));
  for (const d of sent) stack.sendUdp(addr[6].server, addr[6].client, 443, 40000, d, 0, d.length);
  await turn();
  const frames = dev.takeTx();
  t.equal(frames.length, 1, 'one packet');
  // a second stack reads it as a TUN with USO hands over a UDP_SEGMENT send
  const got: Buffer[] = [];
  const reader = new Stack(new MemoryTun({ mtu: 1500, offload: USO }), () => {}, {
    ipv6: true,
    udp: { onDatagram: (_k, b, o, l) => (got.push(Buffer.from(b.subarray(o, o + l))), true) },
  });
  const h = newVnetHdr();
  readVnetHdr(frames[0], 0, frames[0].length, h);
  const { udpGsoSize, checksumVouched } = await import('../../../src/stack/wire/virtio-net-hdr.js');
  reader.input(frames[0], VNET_HDR_LEN, frames[0].length - VNET_HDR_LEN, 1, checksumVouched(h), udpGsoSize(h, frames[0].length - VNET_HDR_LEN));
  t.same(
    got.map((g) => g.toString('hex')),
    sent.map((d) => d.toString('hex')),
  );
});

for (const [name, offload] of [
  ['no USO (checksum offload and TSO only)', NO_USO],
  ['no offloads', NO_OFFLOAD],
] as const) {
  t.test(`${name}: one datagram per write, all at the end of the turn`, async (t) => {
    const { dev, stack, addr } = uso(offload);
    const sent = Array.from({ length: 20 }, (_, i) => payload(1200, i));
    for (const d of sent) stack.sendUdp(addr[4].server, addr[4].client, 443, 40000, d, 0, d.length);
    await Promise.resolve();
    t.same(dev.takeTx(), [], 'not flushed after the callback (a microtask)');
    await turn();
    const frames = dev.takeTx();
    t.equal(frames.length, 20, 'twenty writes');
    const hdr = offload.vnetHdrLen;
    const got = frames.map((f) => verify(hdr ? kernelSplit(f)[0] : f)).map((d) => (d && typeof d !== 'string' ? d.data.toString('hex') : d));
    t.same(
      got,
      sent.map((d) => d.toString('hex')),
      'bytes and order',
    );
    if (hdr)
      t.ok(
        frames.every((f) => f[1] === VNET_GSO_NONE),
        'no GSO',
      );
    t.equal(stack.counters.udpUsoPackets, 0);
  });
}

t.test('a TCP flush in the middle of the turn leaves the open run alone', async (t) => {
  const { dev, stack, addr } = uso(USO);
  const sent = Array.from({ length: 6 }, (_, i) => payload(900, i));
  for (const d of sent.slice(0, 3)) stack.sendUdp(addr[4].server, addr[4].client, 443, 40000, d, 0, d.length);
  // an RST to a segment without a flow is written and flushed on the microtask, as TCP output is
  const syn = Buffer.alloc(40);
  syn.writeUInt8(0x45, 0);
  syn.writeUInt16BE(40, 2);
  syn[8] = 64;
  syn[9] = 6;
  syn.writeUInt32BE(addr[4].client, 12);
  syn.writeUInt32BE(addr[4].server, 16);
  syn.writeUInt16BE(checksum(syn, 0, 20), 10);
  syn.writeUInt16BE(40001, 20);
  syn.writeUInt16BE(80, 22);
  syn[32] = 0x50;
  syn[33] = 0x10; // a bare ACK: answered with a RST
  syn.writeUInt16BE(checksum(syn, 20, 20, pseudoSum4(addr[4].client, addr[4].server, 6, 20)), 36);
  stack.input(syn, 0, 40, 1);
  await Promise.resolve();
  const tcp = dev.takeTx();
  t.equal(tcp.length, 1, 'the RST left after its callback');
  t.equal(tcp[0][VNET_HDR_LEN + 9], 6, 'and it is TCP');
  for (const d of sent.slice(3)) stack.sendUdp(addr[4].server, addr[4].client, 443, 40000, d, 0, d.length);
  const { frames, got } = await written(t, dev);
  t.same(
    frames.map((f) => f.datagrams),
    [6],
    'the six replies still went as one packet',
  );
  t.same(
    got.map((g) => g.data.toString('hex')),
    sent.map((d) => d.toString('hex')),
  );
});
