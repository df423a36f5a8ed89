// A multi-queue TUN against the kernel, run inside a test namespace:
//   ip netns exec NS node --import tsx test/helpers/tun-mq-check.ts QUEUES
// Opens the TUN with QUEUES queues, reads each queue's fd, sends UDP from 64
// source ports (three datagrams each and one above the MTU, which arrives in
// IP fragments) and TCP SYNs from 16 sockets to 16 hosts and 16 to one host
// into it, and prints one JSON line: packets per queue, the flows seen on more
// than one queue (fragments counted with their datagram's flow: there must be
// none), the queues the SYNs to one host reached, and whether our steering
// program is attached.
import dgram from 'node:dgram';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { loadTunAddon } from '../../src/tun/native-addon.js';
import { openLinuxTun } from '../../src/tun/linux-tun.js';

const queues = Number(process.argv[2] ?? 2);
const dev = openLinuxTun({ name: 'tsTmq0', mtu: 1500, addresses: ['198.18.0.1/30'], queues });
execFileSync('ip', ['route', 'add', '203.0.113.0/24', 'dev', dev.name]);
const addon = loadTunAddon();
const perQueue = dev.fds!.map(() => 0);
/** flow (src port, dst) -> the queues it was seen on */
const seenOn = new Map<string, Set<number>>();
/** A fragmented datagram (IP id and addresses) -> its flow, from its first fragment (the one with the UDP header). */
const datagramFlow = new Map<string, string>();
/** The queues each later fragment of a datagram reached. */
const laterFragments: { datagram: string; queue: number }[] = [];
let fragments = 0;
const oneHostSynQueues = new Set<number>();
const readers = dev.fds!.map((fd, q) => {
  const slot = 2048;
  const slab = Buffer.alloc(slot * 64);
  const lengths = new Uint32Array(64);
  const r = addon.createReader(fd, slab, lengths, slot, 64, (count) => {
    for (let i = 0; i < count; i++) {
      const p = slab.subarray(i * slot, i * slot + lengths[i]);
      if (p[0] >> 4 !== 4) continue;
      const ihl = (p[0] & 15) * 4;
      perQueue[q]++;
      const fragField = p.readUInt16BE(6);
      const datagram = `${p.readUInt16BE(4)} ${p.subarray(12, 20).join('.')}`;
      if (fragField & 0x3fff) fragments++;
      if (fragField & 0x1fff) {
        laterFragments.push({ datagram, queue: q });
        continue;
      }
      const key = `${p[9]} ${p.readUInt16BE(ihl)} ${p.subarray(16, 20).join('.')}:${p.readUInt16BE(ihl + 2)}`;
      if (fragField & 0x2000) datagramFlow.set(datagram, key);
      if (p[9] === 6 && p.subarray(16, 20).join('.') === '203.0.113.40') oneHostSynQueues.add(q);
      let s = seenOn.get(key);
      if (!s) seenOn.set(key, (s = new Set()));
      s.add(q);
    }
  });
  r.resume();
  return r;
});

const sockets: (dgram.Socket | net.Socket)[] = [];
for (let i = 0; i < 64; i++) {
  const s = dgram.createSocket('udp4');
  sockets.push(s);
  s.bind(0, () => {
    const dst = `203.0.113.${1 + (i % 8)}`;
    for (let k = 0; k < 3; k++) s.send(Buffer.from(`flow ${i} datagram ${k}`), 9000 + (i % 4), dst);
    s.send(Buffer.alloc(3000, i), 9000 + (i % 4), dst);
  });
}
for (let i = 0; i < 32; i++) {
  // 16 hosts, then 16 connections to one host: TCP spreads by ports too
  const c = net.connect(80, i < 16 ? `203.0.113.${20 + i}` : '203.0.113.40');
  c.on('error', () => {});
  sockets.push(c);
}
setTimeout(() => {
  for (const s of sockets) {
    if (s instanceof net.Socket) s.destroy();
    else s.close();
  }
  for (const r of readers) r.close();
  for (const f of laterFragments) {
    const flow = datagramFlow.get(f.datagram);
    if (flow) seenOn.get(flow)!.add(f.queue);
  }
  const split = [...seenOn].filter(([, s]) => s.size > 1).map(([k]) => k);
  const fdsOpen = dev.fds!.length;
  dev.close();
  process.stdout.write(
    JSON.stringify({ name: dev.name, fds: fdsOpen, perQueue, flows: seenOn.size, split, fragments, oneHostSynQueues: oneHostSynQueues.size, steering: dev.steering }) + '\n',
  );
  process.exit(0);
}, 1500);
