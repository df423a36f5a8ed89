// 1,000,000 seeded malformed packets (test/helpers/packet-fuzzer.ts) into a
// stack wired as the data plane wires it: UDP relay, the gateway's DNS with a
// fake-IP pool, an app side that accepts, rejects, echoes and closes
// (test/helpers/fuzz-stack.ts). Nothing leaves the machine. Longer runs:
// `npm run fuzz`. FUZZ_SEED and FUZZ_COUNT override the defaults.
import t from 'tap';
import { PacketFuzzer } from '../../helpers/packet-fuzzer.js';
import {
  FUZZ_CLIENTS,
  FUZZ_DNS,
  FUZZ_MAPPED,
  FUZZ_SERVERS,
  accounting,
  dropsByReason,
  feed,
  makeFuzzStack,
  normalConnection,
  normalDnsQuery,
  settle,
} from '../../helpers/fuzz-stack.js';
import { Drop } from '../../../src/stack/drop-counters.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20251125);
const N = Number(process.env.FUZZ_COUNT ?? 1_000_000);

/** Drop reasons the generator must reach: proof that each kind of malformation gets to its check. */
const EXPECTED_DROPS = [
  'ipv4_truncated',
  'ipv4_bad_version',
  'ipv4_bad_ihl',
  'ipv4_bad_total_length',
  'ipv4_bad_checksum',
  'ipv4_fragment',
  'tcp_truncated',
  'tcp_bad_offset',
  'tcp_bad_checksum',
  'tcp_bad_option',
  'udp_truncated',
  'udp_bad_length',
  'udp_bad_checksum',
  'unknown_protocol',
  'no_flow',
  'ipv6_truncated',
  'ipv6_bad_length',
  'ipv6_bad_ext_header',
  'ipv6_routing_header',
  'ipv6_fragment',
  'icmp_bad_checksum',
  'icmp_unsupported',
];

t.test(`fuzz: ${N.toLocaleString('en')} seeded malformed packets (seed ${SEED}): nothing throws, every packet is accounted for, service continues`, async (t) => {
  const h = makeFuzzStack();
  const fz = new PacketFuzzer({ seed: SEED, clients: FUZZ_CLIENTS, servers: FUZZ_SERVERS, dnsAddress: FUZZ_DNS, mappedNames: FUZZ_MAPPED });
  const r = await feed(h, fz, N);
  await settle(h, 300);
  const c = h.stack.counters;
  const udpIn = h.relay.counters.udpIn;
  const dnsQueries = h.udp.counters.dnsQueries;
  t.comment(`${r.packets} packets in ${(r.ms / 1000).toFixed(1)} s (${Math.round(r.packets / (r.ms / 1000))} packets/s); by kind ${JSON.stringify(r.byKind)}`);
  t.comment(`drops ${JSON.stringify(dropsByReason(h))}`);
  t.comment(`new connections ${c.tcpTotal}, segments on connections ${c.tcpSegments}, DNS queries ${dnsQueries}, UDP datagrams ${udpIn}; dns ${JSON.stringify(h.dns.counters)}`);

  t.equal(r.threw, 0, `nothing threw out of stack.input${r.firstError ? `: ${r.firstError.stack}\npacket ${r.firstErrorPacket}` : ''}`);
  t.equal(r.packets, N, 'every packet was fed');
  t.equal(c.packetsIn, N, 'packetsIn equals the count');
  t.equal(c.udpDatagrams, dnsQueries + udpIn, 'every datagram handed up went to the DNS or the relay');
  // Each packet is a drop (counted by reason) or handled: a new connection, a
  // segment of one, a DNS query, or a UDP datagram (see accounting()).
  const acc = accounting(h);
  t.equal(
    acc.inputDrops + acc.handled,
    N + acc.reassembled,
    `every packet (and reassembled datagram, ${acc.reassembled}) is a drop (${acc.inputDrops}) or handled (${acc.handled})`,
  );
  t.ok(acc.inputDrops > N / 2, 'most were dropped');
  const drops = dropsByReason(h);
  for (const reason of EXPECTED_DROPS) t.ok((drops[reason] ?? 0) > 0, `reached the ${reason} check`);
  t.ok(c.tcpTotal > 0 && c.tcpSegments > 0 && dnsQueries > 0 && udpIn > 0, 'connections, segments, DNS queries and UDP datagrams were all handled too');
  t.equal(h.dns.counters.queries, dnsQueries, 'every DNS query reached the resolver');
  t.ok(h.dns.counters.formerr > 0 && h.dns.counters.mapped > 0, 'malformed queries got FORMERR, valid ones for mapped names an answer');

  // (the fuzzer once found full segments with SACK blocks over the MTU: test/unit/stack/tcp/sack-fits-mtu.test.ts)
  t.same(
    h.stack.internalErrors.map((e) => e.stack),
    [],
    'no internal error',
  );
  t.equal(h.stack.drops.get(Drop.internal_error), 0);

  t.equal(await normalConnection(h), 'still works', 'a normal connection on the same stack works afterwards');
  const a = await normalDnsQuery(h);
  t.match(a, /^198\.1[89]\.\d+\.\d+$/, `a normal DNS query on the same stack gets a fake IP (${a})`);
});
