// A multi-queue TUN against the kernel, run inside a test namespace:
//   ip netns exec NS node --import tsx test/helpers/tun-mq-check.ts QUEUES
// Opens the TUN with QUEUES queues, reads each queue's fd, sends UDP from 64
// source ports (three datagrams each) and TCP SYNs from 16 sockets into it,
// and prints one JSON line: packets per queue, and the flows seen on more
// than one queue (the kernel steers a flow by its hash: there must be none).
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
const readers = dev.fds!.map((fd, q) => {
  const slot = 2048;
  const slab = Buffer.alloc(slot * 64);
  const lengths = new Uint32Array(64);
  const r = addon.createReader(fd, slab, lengths, slot, 64, (count) => {
    for (let i = 0; i < count; i++) {
      const p = slab.subarray(i * slot, i * slot + lengths[i]);
      if (p[0] >> 4 !== 4) continue;
      const ihl = (p[0] & 15) * 4;
      const key = `${p[9]} ${p.readUInt16BE(ihl)} ${p.subarray(16, 20).join('.')}:${p.readUInt16BE(ihl + 2)}`;
      perQueue[q]++;
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
    for (let k = 0; k < 3; k++) s.send(Buffer.from(`flow ${i} datagram ${k}`), 9000 + (i % 4), `203.0.113.${1 + (i % 8)}`);
  });
}
for (let i = 0; i < 16; i++) {
  const c = net.connect(80, `203.0.113.${20 + i}`);
  c.on('error', () => {});
  sockets.push(c);
}
setTimeout(() => {
  for (const s of sockets) {
    if (s instanceof net.Socket) s.destroy();
    else s.close();
  }
  for (const r of readers) r.close();
  const split = [...seenOn].filter(([, s]) => s.size > 1).map(([k]) => k);
  const fdsOpen = dev.fds!.length;
  dev.close();
  process.stdout.write(JSON.stringify({ name: dev.name, fds: fdsOpen, perQueue, flows: seenOn.size, split }) + '\n');
  process.exit(0);
}, 1500);
