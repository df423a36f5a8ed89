// Bounded UDP load for benchmarks, run inside a namespace:
//   udp-load.ts dns HOST NAME SECONDS    DNS A queries for NAME, 64 in flight, answers/s
//   udp-load.ts echo HOST PORT SECONDS   64-byte datagrams to an echo server, 64 in flight, echoes/s
// Prints one JSON line {rate, answered, seconds}.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

const [mode, host, arg, secondsText] = process.argv.slice(2);
const seconds = Number(secondsText);
const sock = dgram.createSocket('udp4');
let answered = 0;
let id = 0;
const port = mode === 'dns' ? 53 : Number(arg);
const make = (): Buffer =>
  mode === 'dns'
    ? dnsPacket.encode({ id: (id = (id + 1) & 0xffff), type: 'query', flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: arg, type: 'A' }] })
    : Buffer.alloc(64, id++ & 0xff);
const started = performance.now();
const end = started + seconds * 1000;
sock.on('message', () => {
  answered++;
  if (performance.now() < end) sock.send(make());
});
sock.connect(port, host, () => {
  for (let i = 0; i < 64; i++) sock.send(make());
  // a lost datagram would stall its slot: top up every 50 ms
  const topUp = setInterval(() => {
    for (let i = 0; i < 8; i++) sock.send(make());
  }, 50);
  setTimeout(() => {
    clearInterval(topUp);
    const s = (performance.now() - started) / 1000;
    console.log(JSON.stringify({ rate: Math.round(answered / s), answered, seconds: s }));
    process.exit(0);
  }, seconds * 1000);
});
