// npm run fuzz:parsers [-- --count N] [--seed S] [--seconds T]
// Seeded mutation fuzzing of the byte parsers behind the stack: the TLS
// ClientHello and HTTP head sniffers, and the gateway's DNS (DnsOverride, no
// upstreams: nothing leaves the machine). Inputs start from valid messages
// (Node's own ClientHello, request heads, DNS queries) and get bytes flipped,
// inserted, deleted, cut and spliced. Checks: nothing throws; each sniffer's
// verdict is stable (once a prefix gets a verdict other than need-more, every
// longer prefix gets the same); every DNS query gets an answer or a counted
// drop. Exits 1 with the seed and the input (hex) on the first failure.
// (Coverage-guided fuzzing with @jazzer.js/core was tried: 4.0.0's prebuilt
// addon needs glibc 2.38, Debian 12 has 2.36; 2.1.0 downloads its addon at
// install time. See docs/DECISIONS.md.)
import dnsPacket from 'dns-packet';
import { sniffTlsClientHello } from '../src/proxy/sniff/tls-client-hello.js';
import { sniffHttpHead } from '../src/proxy/sniff/http-head.js';
import { DnsOverride } from '../src/routing/dns-override.js';
import { FakeIpPool } from '../src/routing/fake-ip-pool.js';
import { HostPatterns } from '../src/routing/host-patterns.js';
import { captureClientHello } from '../test/helpers/sniff-capture.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const count = Number(flag('count') ?? 5_000_000);
const seed = Number(flag('seed') ?? Date.now() % 2 ** 31);
const seconds = Number(flag('seconds') ?? 600);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed) || !(seconds > 0)) {
  process.stderr.write('usage: npm run fuzz:parsers -- [--count N] [--seed S] [--seconds T]\n');
  process.exit(2);
}

let state = seed >>> 0 || 1;
const u32 = () => {
  let z = (state = (state + 0x6d2b79f5) >>> 0);
  z = Math.imul(z ^ (z >>> 15), z | 1);
  z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
  return (z ^ (z >>> 14)) >>> 0;
};
const int = (n: number) => (n <= 1 ? 0 : u32() % n);

/** One to eight mutations: flip, set, insert, delete, duplicate a run, cut, or splice another seed in. */
function mutate(seeds: Buffer[], b: Buffer): Buffer {
  let x = Buffer.from(b);
  for (let k = 1 + int(8); k > 0; k--) {
    const i = int(x.length + 1);
    switch (int(8)) {
      case 0:
        if (x.length) x[int(x.length)] ^= 1 << int(8);
        break;
      case 1:
        if (x.length) x[int(x.length)] = [0, 0xff, 0x7f, 0x80, 0x3f, 0xc0, u32() & 0xff][int(7)];
        break;
      case 2:
        x = Buffer.concat([x.subarray(0, i), Buffer.from([u32() & 0xff, u32() & 0xff]).subarray(0, 1 + int(2)), x.subarray(i)]);
        break;
      case 3:
        x = Buffer.concat([x.subarray(0, i), x.subarray(Math.min(x.length, i + 1 + int(16)))]);
        break;
      case 4: {
        const n = int(32);
        x = Buffer.concat([x.subarray(0, i), x.subarray(i, i + n), x.subarray(i)]);
        break;
      }
      case 5:
        x = x.subarray(0, i);
        break;
      case 6: {
        const o = seeds[int(seeds.length)];
        const j = int(o.length);
        x = Buffer.concat([x.subarray(0, i), o.subarray(j, j + int(64))]);
        break;
      }
      default:
        if (x.length >= 2) x.writeUInt16BE(u32() & 0xffff, int(x.length - 1));
        break;
    }
  }
  return x;
}

/** The sniffer never throws, and its first verdict other than need-more holds for every longer prefix. */
function checkStable(name: string, sniff: (b: Buffer) => { kind: string }, input: Buffer): string | null {
  let settled: string | null = null;
  const cuts = new Set([input.length, int(input.length + 1), int(input.length + 1), int(input.length + 1)]);
  for (const n of [...cuts].sort((a, b) => a - b)) {
    let kind: string;
    try {
      kind = sniff(input.subarray(0, n)).kind;
    } catch (e) {
      return `${name} threw on ${n} bytes: ${(e as Error).stack}`;
    }
    if (settled !== null && kind !== settled) return `${name}: ${n} bytes gave ${kind} after a shorter prefix gave ${settled}`;
    if (kind !== 'need-more') settled = kind;
  }
  return null;
}

const hellos = await Promise.all([
  captureClientHello({ servername: 'fuzz.example', ALPNProtocols: ['h2', 'http/1.1'] }),
  captureClientHello({ servername: 'a.very.long.name.fuzz.example', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }),
  captureClientHello({ host: '203.0.113.10' }),
]);
const heads = [
  'GET / HTTP/1.1\r\nHost: fuzz.example\r\n\r\n',
  'POST /a?b=c HTTP/1.0\r\nContent-Length: 3\r\nhost:  x.fuzz.example:8080 \r\nX: y\r\n\r\nabc',
  'CONNECT fuzz.example:443 HTTP/1.1\r\nHost: fuzz.example:443\r\n\r\n',
  'GET http://[2001:db8::1]:80/ HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n',
].map((s) => Buffer.from(s, 'latin1'));
const queries = [
  dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'fuzz.example' }] }),
  dnsPacket.encode({ type: 'query', id: 2, questions: [{ type: 'AAAA', name: 'a.fuzz.example' }] }),
  dnsPacket.encode({ type: 'query', id: 3, questions: [{ type: 'A', name: 'other.test' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as dnsPacket.Answer] }),
];
const pool = new FakeIpPool({ cidr: '198.18.0.0/15', reserved: 4, maxMappings: 256 });
const dns = new DnsOverride({ hosts: new HostPatterns(['fuzz.example', '*.fuzz.example']), pool, upstreams: [], timeoutMs: 10, ttl: 10 });

const escaped: Error[] = [];
process.on('uncaughtException', (e) => escaped.push(e));
process.on('unhandledRejection', (e) => escaped.push(e as Error));

const t0 = performance.now();
const done = { tls: 0, http: 0, dns: 0 };
let failure: string | null = null;
let failed: Buffer | null = null;
let i = 0;
for (; i < count && failure === null; i++) {
  const which = i % 3;
  if (which === 0) {
    const input = mutate(hellos, hellos[int(hellos.length)]);
    failure = checkStable('sniffTlsClientHello', sniffTlsClientHello, input);
    failed = input;
    done.tls++;
  } else if (which === 1) {
    const input = mutate(heads, heads[int(heads.length)]);
    failure = checkStable('sniffHttpHead', sniffHttpHead, input);
    failed = input;
    done.http++;
  } else {
    const input = mutate(queries, queries[int(queries.length)]);
    failed = input;
    try {
      await dns.answer(input);
    } catch (e) {
      failure = `DnsOverride.answer threw: ${(e as Error).stack}`;
    }
    done.dns++;
  }
  if (i % 4096 === 0 && performance.now() - t0 > seconds * 1000) break;
}
const c = dns.counters;
const dnsAccounted = c.mapped + c.forwarded + c.formerr + c.dropped;
const report = { seed, inputs: i, seconds: +((performance.now() - t0) / 1000).toFixed(1), perSecond: Math.round(i / ((performance.now() - t0) / 1000)), done, dns: c };
process.stdout.write(JSON.stringify(report, null, 2) + '\n');
if (failure === null && escaped.length > 0) failure = `exception escaped: ${escaped[0].stack}`;
if (failure === null && c.queries !== done.dns) failure = `DNS: ${done.dns} queries asked, ${c.queries} counted`;
// NOTIMP answers (another opcode) are the only answers without a counter of their own
if (failure === null && dnsAccounted > c.queries) failure = `DNS counters exceed the queries: ${JSON.stringify(c)}`;
if (failure !== null) {
  process.stdout.write(`FAIL (reproduce: npm run fuzz:parsers -- --seed ${seed} --count ${i})\n${failure}\ninput: ${failed?.toString('hex')}\n`);
  process.exit(1);
}
process.stdout.write(`ok: ${i.toLocaleString('en')} inputs, seed ${seed}\n`);
process.exit(0);
