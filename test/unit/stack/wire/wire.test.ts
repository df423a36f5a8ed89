// Wire views and writers, cross-checked against ip-packet as an independent
// IPv4 encoder/decoder, plus malformed input of every kind.
import t from 'tap';
import ipPacket from 'ip-packet';
import { Ipv4View } from '../../../../src/stack/wire/ipv4-view.js';
import { TcpView, addressSum, tcpChecksumOk } from '../../../../src/stack/wire/tcp-view.js';
import { fillSegment, newSegment } from '../../../../src/stack/wire/tcp-options.js';
import { writeTcpRst, writeTcpSegment } from '../../../../src/stack/wire/segment-writer.js';
import { writeUdpDatagram } from '../../../../src/stack/wire/datagram-writer.js';
import { UdpView } from '../../../../src/stack/wire/udp-view.js';
import { checksum, fold, pseudoSum4, sumWords, updateChecksum16, updateChecksum32 } from '../../../../src/stack/wire/checksum.js';
import { parseIpv4, ipv4ToString } from '../../../../src/net/address.js';
import { Drop } from '../../../../src/stack/drop-counters.js';
import { ACK, PSH, SYN, type OutSegment, type Segment } from '../../../../src/stack/contracts.js';

const A = parseIpv4('192.0.2.1')!;
const B = parseIpv4('203.0.113.10')!;

function encodeIp(p: { src: string; dst: string; protocol: number; data: Buffer; flags?: number; fragmentOffset?: number }): Buffer {
  const pkt = { version: 4, ttl: 64, protocol: p.protocol, sourceIp: p.src, destinationIp: p.dst, data: p.data, flags: p.flags ?? 2, fragmentOffset: p.fragmentOffset ?? 0 };
  const state = { start: 0, end: 0, buffer: Buffer.alloc(0) };
  ipPacket.preencode(state, pkt);
  state.buffer = Buffer.alloc(state.end);
  ipPacket.encode(state, pkt);
  ipPacket.checksum(state.buffer);
  return state.buffer;
}
const decodeIp = (b: Buffer) => ipPacket.decode({ start: 0, end: b.length, buffer: b });

function newSeg(): Segment {
  return newSegment();
}

function out(o: Partial<OutSegment> & { data?: Buffer }): OutSegment {
  const data = o.data ?? Buffer.alloc(0);
  return {
    flags: ACK,
    seq: 1,
    ack: 2,
    window: 1000,
    mss: -1,
    wscale: -1,
    sackOk: false,
    tsVal: -1,
    tsEcr: 0,
    sack: new Uint32Array(8),
    sackCount: 0,
    payloadLength: data.length,
    copyPayload: (target, off) => void data.copy(target, off),
    ...o,
  };
}

t.test('checksum: RFC 1071 example, odd lengths, alignment, incremental updates', async (t) => {
  const ex = Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  t.equal(fold(sumWords(ex, 0, 8, 0)), 0xddf2, 'RFC 1071 §3 example sum');
  const big = Buffer.alloc(70_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + 7) & 0xff;
  const naive = (b: Buffer, off: number, len: number) => {
    let s = 0;
    for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
    return fold(s);
  };
  for (const off of [0, 1, 2, 3, 4, 20, 21]) {
    for (const len of [0, 1, 63, 64, 65, 1500, 65_480, 65_481]) {
      t.equal(fold(sumWords(big, off, len, 0)), naive(big, off, len), `off ${off} len ${len}`);
    }
  }
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  for (let k = 0; k < 2000; k++) {
    const pkt = Buffer.alloc(40);
    for (let i = 0; i < 40; i++) pkt[i] = rnd() & 0xff;
    const hc = checksum(pkt, 0, 40);
    const at = (rnd() % 19) * 2;
    const old16 = pkt.readUInt16BE(at);
    const new16 = rnd() & 0xffff;
    pkt.writeUInt16BE(new16, at);
    const full = checksum(pkt, 0, 40);
    const inc = updateChecksum16(hc, old16, new16);
    if (fold(sumWords(pkt, 0, 40, inc)) !== fold(sumWords(pkt, 0, 40, full))) t.fail(`16-bit update ${k}`);
    const at32 = (rnd() % 9) * 4;
    const old32 = pkt.readUInt32BE(at32);
    const new32 = rnd();
    pkt.writeUInt32BE(new32, at32);
    const full2 = checksum(pkt, 0, 40);
    const inc2 = updateChecksum32(full, old32, new32);
    if (fold(sumWords(pkt, 0, 40, inc2)) !== fold(sumWords(pkt, 0, 40, full2))) t.fail(`32-bit update ${k}`);
  }
  t.pass('2000 random incremental updates equal a full recomputation (16- and 32-bit fields)');
});

t.test('IPv4: ip-packet encodes, we parse', async (t) => {
  const data = Buffer.from('0123456789abcdef0123');
  const pkt = encodeIp({ src: '192.0.2.1', dst: '203.0.113.10', protocol: 6, data });
  const v = new Ipv4View();
  t.equal(v.reset(pkt, 0, pkt.length), 0);
  t.equal(ipv4ToString(v.src), '192.0.2.1');
  t.equal(ipv4ToString(v.dst), '203.0.113.10');
  t.equal(v.protocol, 6);
  t.equal(v.payloadLength, 20);
  t.equal(v.isFragment, false);
  const trailing = Buffer.concat([pkt, Buffer.alloc(10)]);
  t.equal(v.reset(trailing, 0, trailing.length), 0, 'trailing bytes past the total length are ignored');
  t.equal(v.payloadLength, 20);
});

t.test('IPv4: malformed headers get their drop reason', async (t) => {
  const good = encodeIp({ src: '192.0.2.1', dst: '203.0.113.10', protocol: 6, data: Buffer.alloc(20) });
  const v = new Ipv4View();
  const mut = (f: (b: Buffer) => void, fix = true) => {
    const b = Buffer.from(good);
    f(b);
    if (fix) ipPacket.checksum(b);
    return b;
  };
  t.equal(v.reset(good, 0, 19), Drop.ipv4_truncated);
  t.equal(
    v.reset(
      mut((b) => (b[0] = 0x65)),
      0,
      40,
    ),
    Drop.ipv4_bad_version,
  );
  t.equal(
    v.reset(
      mut((b) => (b[0] = 0x44)),
      0,
      40,
    ),
    Drop.ipv4_bad_ihl,
  );
  t.equal(
    v.reset(
      mut((b) => (b[0] = 0x4f)),
      0,
      40,
    ),
    Drop.ipv4_bad_ihl,
    'IHL past the packet',
  );
  t.equal(
    v.reset(
      mut((b) => b.writeUInt16BE(41, 2)),
      0,
      40,
    ),
    Drop.ipv4_bad_total_length,
  );
  t.equal(
    v.reset(
      mut((b) => b.writeUInt16BE(19, 2)),
      0,
      40,
    ),
    Drop.ipv4_bad_total_length,
  );
  t.equal(
    v.reset(
      mut((b) => (b[8] ^= 1), false),
      0,
      40,
    ),
    Drop.ipv4_bad_checksum,
  );
  const frag = encodeIp({ src: '192.0.2.1', dst: '203.0.113.10', protocol: 6, data: Buffer.alloc(20), flags: 1 });
  t.equal(v.reset(frag, 0, frag.length), 0);
  t.equal(v.isFragment, true, 'MF set');
  const frag2 = encodeIp({ src: '192.0.2.1', dst: '203.0.113.10', protocol: 6, data: Buffer.alloc(20), flags: 0, fragmentOffset: 100 });
  v.reset(frag2, 0, frag2.length);
  t.equal(v.isFragment, true, 'non-zero offset');
  // IP options: IHL 6..15 accepted, payload after them
  for (let ihl = 6; ihl <= 15; ihl++) {
    const hl = ihl * 4;
    const b = Buffer.alloc(hl + 20);
    good.copy(b, 0, 0, 20);
    b[0] = 0x40 | ihl;
    b.fill(1, 20, hl); // NOP options
    b.writeUInt16BE(hl + 20, 2);
    b.writeUInt16BE(0, 10);
    b.writeUInt16BE(checksum(b, 0, hl), 10);
    t.equal(v.reset(b, 0, b.length), 0, `IHL ${ihl}`);
    t.equal(v.payloadOffset, hl);
  }
});

t.test('TCP: our writer, ip-packet decodes, our parser reads back every option', async (t) => {
  const cases: [string, Partial<OutSegment> & { data?: Buffer }][] = [
    ['SYN all options', { flags: SYN | ACK, mss: 1460, wscale: 7, sackOk: true, tsVal: 12345, tsEcr: 678 }],
    ['SYN MSS only', { flags: SYN, mss: 536 }],
    ['SYN sack no ts', { flags: SYN, mss: 1000, sackOk: true, wscale: 0 }],
    ['data with timestamps', { flags: ACK | PSH, tsVal: 1, tsEcr: 2, data: Buffer.from('payload bytes') }],
    ['ack with 3 SACK blocks', { flags: ACK, tsVal: 5, tsEcr: 6, sack: Uint32Array.from([10, 20, 30, 40, 0xfffffff0, 5, 0, 0]), sackCount: 3 }],
    ['ack with 4 SACK blocks, no ts', { flags: ACK, sack: Uint32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), sackCount: 4 }],
  ];
  const slot = Buffer.alloc(2048);
  for (const [name, o] of cases) {
    const os = out({ seq: 0xfffffff0, ack: 77, window: 4321, ...o });
    const len = writeTcpSegment(slot, A, B, 40000, 80, os);
    const pkt = slot.subarray(0, len);
    const d = decodeIp(Buffer.from(pkt));
    t.equal(d.sourceIp, '192.0.2.1', `${name}: src`);
    t.equal(d.destinationIp, '203.0.113.10');
    t.equal(d.protocol, 6);
    t.equal(d.length, len);
    const ck = Buffer.from(pkt);
    t.equal(ipPacket.checksum(ck), pkt.readUInt16BE(10), `${name}: ip-packet agrees on the header checksum`);
    const v = new Ipv4View();
    t.equal(v.reset(pkt, 0, len), 0);
    t.ok(tcpChecksumOk(pkt, A, B, 20, len - 20), `${name}: TCP checksum valid`);
    const tv = new TcpView();
    t.equal(tv.reset(pkt, 20, len - 20), 0);
    const s = newSeg();
    t.equal(fillSegment(tv, s), 0);
    t.equal(s.seq, 0xfffffff0);
    t.equal(s.window, 4321);
    t.equal(s.flags, os.flags);
    if (os.flags & SYN) {
      t.equal(s.mss, os.mss);
      t.equal(s.wscale, os.wscale);
      t.equal(s.sackOk, os.sackOk);
    }
    t.equal(s.tsVal, os.tsVal);
    if (os.tsVal >= 0) t.equal(s.tsEcr, os.tsEcr);
    t.equal(s.sackCount, os.sackCount);
    t.same(Array.from(s.sack.subarray(0, 2 * s.sackCount)), Array.from(os.sack.subarray(0, 2 * os.sackCount)));
    t.equal(s.payload.subarray(s.payloadOffset, s.payloadOffset + s.payloadLength).toString(), (o.data ?? Buffer.alloc(0)).toString());
  }
  const rl = writeTcpRst(slot, A, B, 1, 2, 100, 200, 0x14);
  t.ok(tcpChecksumOk(slot, A, B, 20, rl - 20), 'RST checksum valid');
});

t.test('TCP: malformed headers and options', async (t) => {
  const slot = Buffer.alloc(200);
  const len = writeTcpSegment(slot, A, B, 1, 2, out({ flags: SYN, mss: 1460, wscale: 3, sackOk: true, tsVal: 1, tsEcr: 0 }));
  const tcpLen = len - 20;
  const tv = new TcpView();
  t.equal(tv.reset(slot, 20, 19), Drop.tcp_truncated);
  const bad = Buffer.from(slot);
  bad[32] = 0x40; // data offset 16 bytes < 20
  t.equal(tv.reset(bad, 20, tcpLen), Drop.tcp_bad_offset);
  bad[32] = 0xf0; // 60 bytes > segment
  t.equal(tv.reset(bad, 20, tcpLen), Drop.tcp_bad_offset);
  const flip = Buffer.from(slot);
  flip[len - 1] ^= 0xff;
  t.notOk(tcpChecksumOk(flip, A, B, 20, tcpLen), 'a flipped bit fails the checksum');
  // option surgery: header of 20 + 8 option bytes
  const withOpts = (opts: number[]) => {
    const b = Buffer.alloc(28);
    b[12] = 7 << 4;
    Buffer.from(opts).copy(b, 20);
    const v = new TcpView();
    v.reset(b, 0, 28);
    const s = newSeg();
    return { r: fillSegment(v, s), s };
  };
  t.equal(withOpts([2, 0, 1, 1, 1, 1, 1, 1]).r, Drop.tcp_bad_option, 'length 0');
  t.equal(withOpts([2, 1, 1, 1, 1, 1, 1, 1]).r, Drop.tcp_bad_option, 'length 1');
  t.equal(withOpts([1, 1, 1, 1, 1, 1, 8, 10]).r, Drop.tcp_bad_option, 'timestamps running past the header');
  t.equal(withOpts([2, 3, 5, 1, 1, 1, 1, 1]).r, Drop.tcp_bad_option, 'MSS with the wrong length');
  t.equal(withOpts([3, 3, 20, 1, 1, 1, 1, 0]).s.wscale, 14, 'window scale clamped to 14 (RFC 7323 §2.3)');
  t.equal(withOpts([99, 4, 0, 0, 2, 4, 5, 180]).s.mss, 1460, 'an unknown option is skipped by its length');
  t.equal(withOpts([0, 2, 0, 0, 0, 0, 0, 0]).s.mss, -1, 'EOL ends the list');
});

t.test('UDP: writer and view agree; malformed lengths and checksums dropped', async (t) => {
  const slot = Buffer.alloc(200);
  const payload = Buffer.from('a datagram');
  const len = writeUdpDatagram(slot, B, A, 53, 40000, payload, 0, payload.length);
  const d = decodeIp(Buffer.from(slot.subarray(0, len)));
  t.equal(d.protocol, 17);
  t.equal(d.sourceIp, '203.0.113.10');
  const u = new UdpView();
  t.equal(u.reset(slot, 20, len - 20, addressSum(slot, 0, 4)), 0);
  t.equal(u.srcPort, 53);
  t.equal(slot.subarray(u.payloadOffset, u.payloadOffset + u.payloadLength).toString(), 'a datagram');
  t.equal(u.reset(slot, 20, 7, addressSum(slot, 0, 4)), Drop.udp_truncated);
  const bad = Buffer.from(slot);
  bad.writeUInt16BE(500, 24);
  t.equal(u.reset(bad, 20, len - 20, addressSum(bad, 0, 4)), Drop.udp_bad_length);
  const flip = Buffer.from(slot);
  flip[len - 1] ^= 1;
  t.equal(u.reset(flip, 20, len - 20, addressSum(flip, 0, 4)), Drop.udp_bad_checksum);
  flip.writeUInt16BE(0, 26);
  t.equal(u.reset(flip, 20, len - 20, addressSum(flip, 0, 4)), 0, 'checksum 0 means none over IPv4');
  t.equal(fold(sumWords(slot, 20, len - 20, pseudoSum4(B, A, 17, len - 20))), 0xffff);
});
