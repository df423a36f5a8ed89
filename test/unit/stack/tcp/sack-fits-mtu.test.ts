// Found by the fuzzer: a full-size data segment that also carried SACK blocks
// (we hold out-of-order data from the client while sending to it) was longer
// than the MTU, so the device refused it and the flow was reset.
import t from 'tap';
import type { Duplex } from 'node:stream';
import { Stack } from '../../../../src/stack/stack.js';
import { MemoryTun } from '../../../../src/tun/memory-tun.js';
import { Drop } from '../../../../src/stack/drop-counters.js';
import { ACK, SYN, type OutSegment } from '../../../../src/stack/contracts.js';
import { writeTcpSegment } from '../../../../src/stack/wire/segment-writer.js';
import { parseIpv4 } from '../../../../src/net/address.js';

for (const timestamps of [false, true]) {
  t.test(`full segments with SACK blocks stay within the MTU (timestamps ${timestamps ? 'on' : 'off'})`, async (t) => {
    const C = parseIpv4('192.0.2.1')!;
    const S = parseIpv4('203.0.113.10')!;
    const dev = new MemoryTun({ mtu: 1500 });
    let stream: Duplex | null = null;
    const stack = new Stack(dev, (c) => (stream = c.accept()));
    const slot = Buffer.alloc(1600);
    const seg = (flags: number, seq: number, ack: number, payloadLength = 0, extra: Partial<OutSegment> = {}) => {
      const s: OutSegment = {
        flags,
        seq,
        ack,
        window: 65535,
        mss: -1,
        wscale: -1,
        sackOk: false,
        tsVal: timestamps ? 1 : -1,
        tsEcr: 0,
        sack: new Uint32Array(8),
        sackCount: 0,
        payloadLength,
        copyPayload: (b, o) => void b.fill(0x61, o, o + payloadLength),
        ...extra,
      };
      stack.input(slot, 0, writeTcpSegment(slot, C, S, 40000, 80, s), performance.now());
    };
    seg(SYN, 1000, 0, 0, { mss: 1460, sackOk: true });
    await new Promise((r) => setImmediate(r));
    const iss = dev.takeTx()[0].readUInt32BE(24);
    seg(ACK, 1001, iss + 1);
    // three holes: three SACK blocks to report
    for (const off of [100, 300, 500]) seg(ACK, 1001 + off, iss + 1, 10);
    stream!.on('error', () => {});
    stream!.write(Buffer.alloc(6000, 0x62));
    await new Promise((r) => setImmediate(r));
    const sent = dev.takeTx();
    t.equal(stack.drops.get(Drop.internal_error), 0, 'no internal error');
    t.ok(sent.length >= 4, `data went out (${sent.map((p) => p.length).join(', ')})`);
    t.ok(
      sent.every((p) => p.length <= 1500),
      'no packet over the MTU',
    );
    const dataBytes = sent.reduce((n, p) => n + p.length - 20 - (p[32] >> 4) * 4, 0);
    t.equal(dataBytes, 6000, 'every byte sent once');
  });
}
