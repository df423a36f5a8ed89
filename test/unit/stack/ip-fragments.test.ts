// IP fragments both ways. In: fragments (made here by a plain splitter, not
// the stack's writer) are reassembled in any order, for IPv4 and IPv6; an
// overlap abandons the datagram and what comes of it later (RFC 5722), an
// exact duplicate is dropped alone, incomplete datagrams time out, and the
// count and memory are bounded, each refusal counted. Out: a UDP reply or an
// echo reply over the MTU leaves as fragments that fit it (offsets in 8s, MF,
// DF cleared, the IPv6 Fragment header), which reassemble to the original.
import t from 'tap';
import { Stack } from '../../../src/stack/stack.js';
import { MemoryTun } from '../../../src/tun/memory-tun.js';
import { Drop } from '../../../src/stack/drop-counters.js';
import { Ip6Table } from '../../../src/stack/wire/ip6-table.js';
import { writeUdpDatagram, writeEchoReply } from '../../../src/stack/wire/datagram-writer.js';
import { checksum } from '../../../src/stack/wire/checksum.js';
import { parseIpv4, parseIpv6Into } from '../../../src/net/address.js';
import type { UdpFlowKey } from '../../../src/stack/contracts.js';
import { outSegment } from '../../helpers/out-segment.js';

const C4 = parseIpv4('192.0.2.1')!;
const S4 = parseIpv4('203.0.113.10')!;
const C6 = '2001:db8:1::2';
const S6 = '2001:db8:2::10';
const table = new Ip6Table();
const id6 = (text: string) => {
  const b = Buffer.alloc(16);
  parseIpv6Into(text, b, 0);
  return table.intern(b, 0);
};
const c6 = id6(C6);
const s6 = id6(S6);

function payload(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return b;
}

/** A whole UDP packet from the client (IPv4 or IPv6), built by the datagram writer. */
function udpPacket(v6: boolean, data: Buffer, sport = 5000, dport = 7): Buffer {
  const b = Buffer.alloc(70_000);
  const n = writeUdpDatagram(b, v6 ? c6 : C4, v6 ? s6 : S4, sport, dport, data, 0, data.length, table);
  return Buffer.from(b.subarray(0, n));
}

/** An independent splitter: the whole packet's payload in pieces of `size` bytes (a multiple of 8), as [offset, packet]. */
function split(whole: Buffer, v6: boolean, size: number, id: number): Buffer[] {
  const hl = v6 ? 40 : 20;
  const body = whole.subarray(hl);
  const out: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) {
    const chunk = body.subarray(at, Math.min(body.length, at + size));
    const more = at + size < body.length;
    if (!v6) {
      const h = Buffer.from(whole.subarray(0, 20));
      h.writeUInt16BE(20 + chunk.length, 2);
      h.writeUInt16BE(id, 4);
      h.writeUInt16BE((more ? 0x2000 : 0) | (at / 8), 6);
      h.writeUInt16BE(0, 10);
      h.writeUInt16BE(checksum(h, 0, 20), 10);
      out.push(Buffer.concat([h, chunk]));
    } else {
      const h = Buffer.from(whole.subarray(0, 40));
      h.writeUInt16BE(8 + chunk.length, 4);
      h[6] = 44;
      const f = Buffer.alloc(8);
      f[0] = whole[6];
      f.writeUInt16BE(at | (more ? 1 : 0), 2);
      f.writeUInt32BE(id, 4);
      out.push(Buffer.concat([h, f, chunk]));
    }
  }
  return out;
}

/** A stack whose UDP handler records every datagram (its payload copied). */
function udpStack(mtu = 1500, opts = {}) {
  const dev = new MemoryTun({ mtu });
  const got: { key: UdpFlowKey; data: Buffer }[] = [];
  const stack = new Stack(dev, () => {}, { ...opts, udp: { onDatagram: (key, b, o, l) => (got.push({ key: { ...key }, data: Buffer.from(b.subarray(o, o + l)) }), true) } });
  return { dev, stack, got };
}

for (const v6 of [false, true]) {
  const fam = v6 ? 'IPv6' : 'IPv4';

  t.test(`${fam}: in order, out of order, reversed: one datagram, byte-exact; nothing left held`, async (t) => {
    const { stack, got } = udpStack();
    const data = payload(3000, 1);
    const frags = split(udpPacket(v6, data), v6, 1232, 77);
    t.equal(frags.length, 3);
    const orders = [
      [0, 1, 2],
      [1, 0, 2],
      [2, 1, 0],
      [0, 2, 1],
    ];
    orders.forEach((order, k) => {
      const fr = split(udpPacket(v6, data, 5000 + k), v6, 1232, 100 + k);
      for (const i of order) stack.input(fr[i], 0, fr[i].length, 1);
    });
    t.equal(got.length, 4, 'each order gives the datagram once');
    t.ok(
      got.every((g) => g.data.equals(data)),
      'byte-exact',
    );
    t.same(
      got.map((g) => g.key.clientPort),
      [5000, 5001, 5002, 5003],
    );
    t.equal(stack.counters.fragmentsIn, 12);
    t.equal(stack.counters.datagramsReassembled, 4);
    t.equal(stack.drops.total(), 0);
    t.equal(stack.ip6.size, 0, 'no address held once done');
    void frags;
  });

  t.test(`${fam}: an exact duplicate is dropped alone; the datagram completes`, async (t) => {
    const { stack, got } = udpStack();
    const data = payload(2000, 2);
    const fr = split(udpPacket(v6, data), v6, 1024, 9);
    stack.input(fr[0], 0, fr[0].length, 1);
    stack.input(fr[0], 0, fr[0].length, 1);
    stack.input(fr[1], 0, fr[1].length, 1);
    t.equal(stack.drops.get(Drop.frag_duplicate), 1);
    t.equal(got.length, 1);
    t.ok(got[0].data.equals(data));
  });

  t.test(`${fam}: an overlap abandons the datagram and its later fragments (RFC 5722), counted`, async (t) => {
    const { stack, got } = udpStack();
    const data = payload(3000, 3);
    const fr = split(udpPacket(v6, data), v6, 1024, 10);
    const other = split(udpPacket(v6, data), v6, 512, 10); // the same id, cut elsewhere: overlaps fr
    stack.input(fr[0], 0, fr[0].length, 1);
    stack.input(other[1], 0, other[1].length, 1); // [512, 1024) inside fr[0]'s [0, 1024)
    t.equal(stack.drops.get(Drop.frag_overlap), 1);
    stack.input(fr[1], 0, fr[1].length, 1);
    stack.input(fr[2], 0, fr[2].length, 1);
    t.equal(stack.drops.get(Drop.frag_abandoned), 2, 'the rest of it is dropped too');
    t.equal(got.length, 0, 'nothing delivered');
    stack.tick(v6 ? 60_001 : 30_001);
    t.equal(stack.drops.get(Drop.frag_timeout), 0, 'an abandoned datagram is not counted again when it goes');
    for (const f of split(udpPacket(v6, data), v6, 1024, 10)) stack.input(f, 0, f.length, v6 ? 60_002 : 30_002);
    t.equal(got.length, 1, 'after its timeout the id is free again');
  });

  t.test(`${fam}: an incomplete datagram times out (${v6 ? 60 : 30} s), counted once`, async (t) => {
    const { stack, got } = udpStack();
    const fr = split(udpPacket(v6, payload(3000, 4)), v6, 1024, 11);
    stack.input(fr[0], 0, fr[0].length, 1000);
    stack.input(fr[2], 0, fr[2].length, 1000);
    stack.tick(1000 + (v6 ? 60_000 : 30_000) - 1);
    t.equal(stack.drops.get(Drop.frag_timeout), 0, 'not yet');
    stack.tick(1000 + (v6 ? 60_000 : 30_000));
    t.equal(stack.drops.get(Drop.frag_timeout), 1);
    stack.input(fr[1], 0, fr[1].length, 100_000);
    t.equal(got.length, 0, 'a late fragment starts a new datagram, which never completes');
    t.equal(stack.ip6.size, v6 ? 2 : 0, 'the new one holds its addresses');
  });

  t.test(`${fam}: bounded: the oldest datagram is evicted past the count and the byte limits`, async (t) => {
    const { stack, got } = udpStack(1500, { reassembly: { maxDatagrams: 4, maxBytes: 10_000 } });
    const firsts = [0, 1, 2, 3, 4, 5].map((k) => split(udpPacket(v6, payload(3000, 5), 6000 + k), v6, 1024, 200 + k));
    for (const fr of firsts) stack.input(fr[0], 0, fr[0].length, 1);
    t.equal(stack.drops.get(Drop.frag_evicted), 2, 'six datagrams, four held: the two oldest evicted');
    for (const k of [4, 5]) for (const f of firsts[k].slice(1)) stack.input(f, 0, f.length, 2);
    t.same(
      got.map((g) => g.key.clientPort),
      [6004, 6005],
      'the newest complete',
    );
    const big = [6, 7, 8, 9].map((k) => split(udpPacket(v6, payload(4000, 6), 7000 + k), v6, 1024, 300 + k));
    for (const fr of big) for (const f of fr.slice(0, 3)) stack.input(f, 0, f.length, 3); // 3 KiB each: 12 KiB > 10,000
    t.ok(stack.drops.get(Drop.frag_evicted) >= 4, 'over the byte limit the oldest go');
  });

  t.test(`${fam}: malformed fragments are counted: a non-final one not a multiple of 8, one past 65,535 bytes`, async (t) => {
    const { stack } = udpStack();
    const whole = udpPacket(v6, payload(3000, 7));
    const odd = split(whole, v6, 1020, 12)[0]; // 1020 is no multiple of 8 (the splitter trusts us)
    stack.input(odd, 0, odd.length, 1);
    const far = split(whole, v6, 1024, 13)[1];
    far.writeUInt16BE((far.readUInt16BE(v6 ? 42 : 6) & (v6 ? 7 : 0xe000)) | (v6 ? 65528 : 8191), v6 ? 42 : 6);
    if (!v6) {
      far.writeUInt16BE(0, 10);
      far.writeUInt16BE(checksum(far, 0, 20), 10);
    }
    stack.input(far, 0, far.length, 1);
    t.equal(stack.drops.get(v6 ? Drop.ipv6_fragment : Drop.ipv4_fragment), 2);
    t.equal(stack.counters.fragmentsIn, 0);
  });

  t.test(`${fam}: a TCP SYN that came in fragments opens a connection`, async (t) => {
    const dev = new MemoryTun({ mtu: 1500 });
    const conns: unknown[] = [];
    const stack = new Stack(dev, (c) => conns.push(c));
    const b = Buffer.alloc(200);
    const { writeTcpSegment } = await import('../../../src/stack/wire/segment-writer.js');
    const n = writeTcpSegment(b, v6 ? c6 : C4, v6 ? s6 : S4, 40000, 80, outSegment({ flags: 2, seq: 1, mss: 1460, sackOk: true, tsVal: 5 }), table);
    const fr = split(Buffer.from(b.subarray(0, n)), v6, 16, 14);
    for (const f of fr.reverse()) stack.input(f, 0, f.length, 1);
    t.equal(conns.length, 1);
  });

  t.test(`${fam}: replies over the MTU leave in fragments that fit it and reassemble to the original`, async (t) => {
    for (const [mtu, size] of [
      [1500, 1473],
      [1500, 8000],
      [1280, 65_000],
      [65520, 65_000],
    ] as const) {
      if (!v6 && size > 65_507) continue;
      const dev = new MemoryTun({ mtu });
      const stack = new Stack(dev, () => {}, { udp: { onDatagram: () => true } });
      const data = payload(size, 8);
      stack.sendUdp(
        v6
          ? stack.ip6.intern(
              (() => {
                const x = Buffer.alloc(16);
                parseIpv6Into(S6, x, 0);
                return x;
              })(),
              0,
            )
          : S4,
        v6
          ? stack.ip6.intern(
              (() => {
                const x = Buffer.alloc(16);
                parseIpv6Into(C6, x, 0);
                return x;
              })(),
              0,
            )
          : C4,
        7,
        5000,
        data,
        0,
        data.length,
      );
      dev.flushTx();
      const out = dev.takeTx();
      const hl = v6 ? 48 : 20;
      t.ok(
        out.every((p) => p.length <= mtu),
        `${mtu}/${size}: every packet fits the MTU`,
      );
      const whole = size + (v6 ? 48 : 28);
      t.equal(out.length, whole <= mtu ? 1 : Math.ceil((whole - (v6 ? 40 : 20)) / (((mtu - hl) >> 3) << 3)), `${mtu}/${size}: ${out.length} packets`);
      if (out.length > 1) {
        for (let i = 0; i < out.length; i++) {
          const p = out[i];
          const more = i < out.length - 1;
          if (!v6) {
            t.equal(checksum(p, 0, 20), 0, 'header checksum');
            t.equal(p[6] & 0x40, 0, 'DF cleared');
            t.equal((p[6] & 0x20) !== 0, more, 'MF on all but the last');
          } else {
            t.equal(p[6], 44, 'a Fragment header');
            t.equal(p[40], 17, 'naming UDP');
            t.equal((p[43] & 1) === 1, more, 'M on all but the last');
          }
          if (more) t.equal((p.length - hl) % 8, 0, 'a multiple of 8 bytes');
        }
      }
      // the stack's own reassembly (checked above against an independent splitter) puts them back
      const back = udpStack(mtu);
      for (const p of out) back.stack.input(p, 0, p.length, 1);
      t.equal(back.got.length, 1, `${mtu}/${size}: reassembled`);
      t.ok(back.got[0]?.data.equals(data), `${mtu}/${size}: byte-exact`);
      t.equal(stack.drops.get(Drop.udp_too_big), 0);
      if (out.length > 1) t.equal(stack.counters.packetsFragmented, 1);
    }
  });

  t.test(`${fam}: an echo request that came in fragments is answered in fragments`, async (t) => {
    const dev = new MemoryTun({ mtu: 1500 });
    const stack = new Stack(dev, () => {});
    const data = payload(4000, 9);
    const req = Buffer.alloc(5000);
    // an echo request is an echo reply with another type: the writer makes a valid one, then the type and checksum are set
    const body = Buffer.concat([Buffer.from([v6 ? 128 : 8, 0, 0, 0, 0x12, 0x34, 0, 1]), data]);
    const n = writeEchoReply(req, v6 ? c6 : C4, v6 ? s6 : S4, body, 0, body.length, table);
    const hl = v6 ? 40 : 20;
    req[hl] = v6 ? 128 : 8;
    req.writeUInt16BE(0, hl + 2);
    if (v6) {
      const { pseudoSum } = await import('../../../src/stack/wire/checksum.js');
      req.writeUInt16BE(checksum(req, hl, n - hl, pseudoSum(c6, s6, 58, n - hl, table)), hl + 2);
    } else req.writeUInt16BE(checksum(req, hl, n - hl), hl + 2);
    for (const f of split(Buffer.from(req.subarray(0, n)), v6, 1400, 15)) stack.input(f, 0, f.length, 1);
    dev.flushTx();
    const out = dev.takeTx();
    t.equal(stack.counters.icmpEchoReplies, 1);
    t.equal(out.length, 3, 'the reply in three fragments');
    t.ok(out.every((p) => p.length <= 1500));
  });
}

t.test('over the byte limit the datagram that grew is kept and an other one goes, whichever is older', async (t) => {
  const { stack, got } = udpStack(1500, { reassembly: { maxDatagrams: 8, maxBytes: 3000 } });
  const a = split(udpPacket(false, payload(3000, 10), 8001), false, 1024, 400);
  const b = split(udpPacket(false, payload(3000, 11), 8002), false, 1024, 401);
  stack.input(a[0], 0, a[0].length, 1); // the oldest
  stack.input(b[0], 0, b[0].length, 1);
  stack.input(a[1], 0, a[1].length, 1); // a grows past the limit: b, the only other, goes
  t.equal(stack.drops.get(Drop.frag_evicted), 1);
  stack.input(a[2], 0, a[2].length, 1);
  t.same(
    got.map((g) => g.key.clientPort),
    [8001],
    'the one that grew completes',
  );
});

t.test('random fragments of random datagrams (both families, small bounds): no throw, bounds kept, every completion byte-exact', async (t) => {
  let seed = 99;
  const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
  const { stack, got } = udpStack(1500, { reassembly: { maxDatagrams: 6, maxBytes: 20_000 } });
  const sent = new Map<number, Buffer>();
  let now = 0;
  for (let round = 0; round < 400; round++) {
    const v6 = rnd(2) === 1;
    const port = 9000 + round;
    const data = payload(100 + rnd(6000), round);
    sent.set(port, data);
    const frags = split(udpPacket(v6, data, port), v6, 8 * (1 + rnd(200)), rnd(8)); // ids collide on purpose
    // shuffle, duplicate some, drop some, and mix in the previous round's leftovers
    for (let i = frags.length - 1; i > 0; i--) {
      const j = rnd(i + 1);
      [frags[i], frags[j]] = [frags[j], frags[i]];
    }
    for (const f of frags) {
      if (rnd(10) === 0) continue;
      stack.input(f, 0, f.length, now);
      if (rnd(8) === 0) stack.input(f, 0, f.length, now);
    }
    now += rnd(3000);
    stack.tick(now);
  }
  const bad = got.filter((g) => !g.data.equals(sent.get(g.key.clientPort)!));
  t.equal(bad.length, 0, `every datagram delivered is the one sent (${got.length} delivered)`);
  t.ok(got.length > 50, 'many completed');
  t.ok(stack.drops.get(Drop.frag_overlap) + stack.drops.get(Drop.frag_evicted) + stack.drops.get(Drop.frag_timeout) > 0, 'and the refusals were counted');
  stack.tick(now + 120_000);
  t.equal(stack.ip6.size, 0, 'everything let go after the timeouts');
});
