// A small authoritative-style DNS server for end-to-end tests (UDP and TCP),
// run inside the servers namespace: `dns-peer.ts HOST [OTHER_IP]` on port 53
// (OTHER_IP: what other.example.com resolves to here, so a test can tell two servers apart).
//   api.example.com, other.example.com, x.corp.example → A 203.0.113.10
//   big.example.com → 40 A records; over UDP only a truncated (TC) answer
//   v6.example.com → AAAA 2001:db8:10::10 only (no A)
//   dual.example.com → A 203.0.113.10 and AAAA 2001:db8:10::10
//   anything else → NXDOMAIN
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';

const host = process.argv[2];
const ZONE: Record<string, string> = {
  'api.example.com': '203.0.113.10',
  'other.example.com': process.argv[3] ?? '203.0.113.10',
  'x.corp.example': '203.0.113.10',
};

function answer(msg: Buffer, tcp: boolean): Buffer {
  const q = dnsPacket.decode(msg);
  const question = q.questions![0];
  const name = question.name.toLowerCase();
  const base = { id: q.id, type: 'response' as const, questions: q.questions };
  if (name === 'big.example.com') {
    if (!tcp) return dnsPacket.encode({ ...base, flags: 0x8180 | (1 << 9) });
    const answers = Array.from({ length: 40 }, (_, i) => ({ name: question.name, type: 'A' as const, ttl: 60, data: `203.0.113.${100 + i}` }));
    return dnsPacket.encode({ ...base, flags: 0x8180, answers });
  }
  if (name === 'dual.example.com') {
    const answers =
      question.type === 'AAAA'
        ? [{ name: question.name, type: 'AAAA' as const, ttl: 60, data: '2001:db8:10::10' }]
        : question.type === 'A'
          ? [{ name: question.name, type: 'A' as const, ttl: 60, data: '203.0.113.10' }]
          : [];
    return dnsPacket.encode({ ...base, flags: 0x8180, answers });
  }
  if (name === 'v6.example.com') {
    const answers = question.type === 'AAAA' ? [{ name: question.name, type: 'AAAA' as const, ttl: 60, data: '2001:db8:10::10' }] : [];
    return dnsPacket.encode({ ...base, flags: 0x8180, answers });
  }
  const ip = ZONE[name];
  if (!ip) return dnsPacket.encode({ ...base, flags: 0x8183 });
  const answers = question.type === 'A' ? [{ name: question.name, type: 'A' as const, ttl: 60, data: ip }] : [];
  return dnsPacket.encode({ ...base, flags: 0x8180, answers });
}

const udp = dgram.createSocket('udp4');
udp.on('message', (m, r) => {
  try {
    udp.send(answer(m, false), r.port, r.address);
  } catch {
    // not DNS: ignore
  }
});
const tcp = net.createServer((s) => {
  let acc = Buffer.alloc(0);
  s.on('error', () => {});
  s.on('data', (d) => {
    acc = Buffer.concat([acc, d]);
    while (acc.length >= 2 && acc.length >= 2 + acc.readUInt16BE(0)) {
      const msg = acc.subarray(2, 2 + acc.readUInt16BE(0));
      acc = acc.subarray(2 + msg.length);
      const a = answer(msg, true);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(a.length);
      s.write(Buffer.concat([len, a]));
    }
  });
  s.on('end', () => s.end());
});
udp.bind(53, host, () => tcp.listen(53, host, () => console.log(JSON.stringify({ listening: `${host}:53` }))));
