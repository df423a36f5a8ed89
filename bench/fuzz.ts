// npm run fuzz [-- --count N] [--seed S] [--seconds T]
// The seeded packet fuzzer (test/helpers/packet-fuzzer.ts) against the stack
// wired as the data plane wires it (test/helpers/fuzz-stack.ts), in-process,
// nothing on the network. Default: 20,000,000 packets or 30 minutes, whichever
// ends first. Prints packets/s, packets per kind and drops per reason; exits 1
// on any exception that escapes, an internal error, a packet not accounted
// for, or a normal connection failing afterwards, and prints the seed to
// reproduce it.
import { PacketFuzzer } from '../test/helpers/packet-fuzzer.js';
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
} from '../test/helpers/fuzz-stack.js';
import { Drop } from '../src/stack/drop-counters.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const count = Number(flag('count') ?? 20_000_000);
const seed = Number(flag('seed') ?? Date.now() % 2 ** 31);
const seconds = Number(flag('seconds') ?? 1800);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || !(seconds > 0)) {
  process.stderr.write('usage: npm run fuzz -- [--count N] [--seed S] [--seconds T]\n');
  process.exit(2);
}

// An exception escaping asynchronously (a stream, a DNS answer) is a failure too.
const escaped: Error[] = [];
process.on('uncaughtException', (e) => escaped.push(e));
process.on('unhandledRejection', (e) => escaped.push(e as Error));

process.stdout.write(`fuzz: seed ${seed}, up to ${count.toLocaleString('en')} packets or ${seconds} s\n`);
const h = makeFuzzStack();
const fz = new PacketFuzzer({ seed, clients: FUZZ_CLIENTS, servers: FUZZ_SERVERS, dnsAddress: FUZZ_DNS, mappedNames: FUZZ_MAPPED });
const progress = setInterval(() => process.stdout.write(`  ${h.stack.counters.packetsIn.toLocaleString('en')} packets\n`), 10_000);
const r = await feed(h, fz, count, seconds * 1000);
clearInterval(progress);
await settle(h, 300);
const acc = accounting(h);
const echoed = await normalConnection(h);
const dnsAnswer = await normalDnsQuery(h);
const report = {
  seed,
  packets: r.packets,
  seconds: +(r.ms / 1000).toFixed(1),
  packetsPerSecond: Math.round(r.packets / (r.ms / 1000)),
  byKind: r.byKind,
  dropsByReason: dropsByReason(h),
  accounting: acc,
  counters: { ...h.stack.counters, ...h.udp.counters, ...h.relay.counters },
  dns: h.dns.counters,
  app: h.conns,
  threw: r.threw,
  escaped: escaped.length,
  normalConnection: echoed === 'still works',
  normalDnsAnswer: dnsAnswer,
};
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
const failures: string[] = [];
if (r.threw > 0) failures.push(`${r.threw} exceptions out of stack.input; first: ${r.firstError?.stack}\n  packet: ${r.firstErrorPacket}`);
if (escaped.length > 0) failures.push(`${escaped.length} exceptions escaped asynchronously; first: ${escaped[0]?.stack}`);
const internal = h.stack.drops.get(Drop.internal_error);
if (internal > 0) {
  // the stack keeps the last 16: one stack trace per distinct message
  const byMessage = new Map(h.stack.internalErrors.map((e) => [e.message, e.stack]));
  failures.push(`${internal} internal errors; the last ones:\n${[...byMessage.values()].join('\n')}`);
}
if (acc.unaccounted !== 0) failures.push(`${acc.unaccounted} packets not accounted for`);
if (!report.normalConnection) failures.push(`normal connection afterwards failed (echoed ${JSON.stringify(echoed)})`);
if (dnsAnswer === null) failures.push('a normal DNS query afterwards got no A answer');
if (failures.length > 0) {
  process.stdout.write(`FAIL (reproduce: npm run fuzz -- --seed ${seed} --count ${r.packets})\n${failures.join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`ok: ${r.packets.toLocaleString('en')} packets, ${report.packetsPerSecond.toLocaleString('en')} packets/s, seed ${seed}\n`);
process.exit(0);
