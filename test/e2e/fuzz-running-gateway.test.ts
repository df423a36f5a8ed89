// 100,000 seeded malformed packets (test/helpers/packet-fuzzer.ts) written
// byte for byte into the TUN of a running gateway (route-all, DNS hijack on)
// by test/helpers/raw-fuzz.py: it stays up, every packet it read is counted
// as a drop or as handled, and a normal connection and a DNS query still work.
//
// Accounting against the kernel: the TUN driver counts a packet in the
// device's tx.packets when the gateway reads it, and in tx.dropped when its
// queue was full. Their sum is what reached the device: the fuzz packets plus
// whatever the client namespace's kernel sends into the TUN meanwhile (the fuzz
// sources are not its addresses, so it answers none of the gateway's replies).
import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { nsExec } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, ROOT, clientResolvConf, makeTopology, startDnsPeer, startGateway, startNginx, tunsteerArgv, waitForGateway } from '../helpers/topology.js';
import { packetFile } from '../helpers/packet-fuzzer.js';
import { parseIpv4 } from '../../src/net/address.js';
import { NOT_INPUT_VERDICTS } from '../../src/stack/drop-counters.js';

const COUNT = 100_000;
const SEED = 7;
const TUN = 'tsf0';

t.setTimeout(300_000);
const topo = await makeTopology(t);
await startNginx(t, topo);
await startDnsPeer(t, topo);
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', TUN, '--max-udp-flows', '512']);
await waitForGateway(topo.client, stateDir, gw);

interface Status {
  pid: number;
  counters: Record<string, number>;
  drops: Record<string, number>;
}
const status = async (): Promise<Status> => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status;
const tunTx = async (): Promise<{ packets: number; dropped: number }> => {
  const [link] = JSON.parse((await nsExec(topo.client, ['ip', '-j', '-s', 'link', 'show', 'dev', TUN])).stdout);
  return { packets: link.stats64.tx.packets, dropped: link.stats64.tx.dropped };
};
/** The status once packetsIn has stopped moving (the file is rewritten every second). */
const quiet = async (): Promise<Status> => {
  let last = await status();
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 1200));
    const s = await status();
    if (s.counters.packetsIn === last.counters.packetsIn) return s;
    last = s;
  }
  return last;
};
const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
/** Drops that are input verdicts (see accounting() in test/helpers/fuzz-stack.ts). */
const inputDrops = (s: Status) => sum(s.drops) - NOT_INPUT_VERDICTS.reduce((n, k) => n + (s.drops[k] ?? 0), 0);
// a fragment taken into reassembly is handled; the datagram it completes counts as one more packet in (reassembled)
const handled = (s: Status) =>
  s.counters.tcpTotal +
  (s.counters.synCookiesSent ?? 0) +
  s.counters.tcpSegments +
  s.counters.dnsQueries +
  (s.counters.udpIn ?? 0) +
  (s.counters.icmpEchoReplies ?? 0) +
  (s.counters.ndIgnored ?? 0) +
  (s.counters.fragmentsIn ?? 0);
const reassembled = (s: Status) => s.counters.datagramsReassembled ?? 0;

t.test(`${COUNT.toLocaleString('en')} malformed packets into the TUN: no crash, every packet read is accounted for, service continues`, async (t) => {
  // sources that are not the client's own addresses: its kernel drops the gateway's replies silently
  const clients = ['192.0.2.77', '198.51.100.9'].map((a) => parseIpv4(a)!);
  const servers = [NGINX_IP, '203.0.113.12', '203.0.113.99'].map((a) => parseIpv4(a)!);
  const file = packetFile({ seed: SEED, clients, servers, dnsAddress: parseIpv4(DNS_IP)! }, COUNT);
  const path = join(topo.tmp, 'fuzz.bin');
  writeFileSync(path, file.data);

  // a longer TUN queue than the default 500 (this namespace's device only): fewer lost to bursts
  await nsExec(topo.client, ['ip', 'link', 'set', 'dev', TUN, 'txqueuelen', '4096']);
  const before = await quiet();
  const tx0 = await tunTx();
  const r = await nsExec(topo.client, ['python3', join(ROOT, 'test/helpers/raw-fuzz.py'), path, TUN, '256', '120'], { timeoutMs: 150_000 });
  const sent = JSON.parse(r.stdout) as { sent: number; failed: number; seconds: number; waits: number };
  t.equal(sent.sent, file.packets, `all ${file.packets} packets written into the TUN (${sent.seconds} s, ${sent.failed} refused, ${sent.waits} waits for the gateway)`);
  const after = await quiet();
  const tx1 = await tunTx();
  t.equal(gw.exitCode, null, 'the gateway still runs');
  t.equal(after.pid, before.pid, 'same gateway process');

  const read = after.counters.packetsIn - before.counters.packetsIn;
  const delivered = tx1.packets - tx0.packets;
  const queueDrops = tx1.dropped - tx0.dropped;
  t.comment(`sent ${sent.sent} in ${sent.seconds} s, read by the gateway ${read}, TUN tx.packets +${delivered}, TUN queue drops +${queueDrops}`);
  // the namespace's own kernel may queue a packet (router solicitation, MLD) between the two readings
  t.ok(Math.abs(read - delivered) <= 2, `the gateway counted every packet the TUN handed it (${read} read, ${delivered} handed)`);
  const extra = delivered + queueDrops - sent.sent;
  t.ok(extra >= 0 && extra <= 100, `every packet sent reached the TUN: read or dropped by its full queue (${extra} more from the namespace's own kernel)`);
  // the writer keeps at most 256 packets in a 4096-packet queue, so the gateway reads every one however slow it is
  t.equal(queueDrops, 0, 'no packet lost to a full TUN queue: the gateway read all of them');

  const dropDelta = Object.fromEntries(
    Object.entries(after.drops)
      .map(([k, v]) => [k, v - (before.drops[k] ?? 0)])
      .filter(([, v]) => (v as number) > 0),
  );
  t.comment(`drops ${JSON.stringify(dropDelta)}`);
  t.equal(
    inputDrops(after) + handled(after),
    after.counters.packetsIn + reassembled(after),
    `every packet read (and datagram reassembled) is a drop (${inputDrops(after)}) or handled (${handled(after)})`,
  );
  for (const reason of ['ipv4_bad_checksum', 'ipv4_bad_total_length', 'ipv4_bad_version', 'tcp_bad_option', 'tcp_bad_checksum', 'udp_bad_length', 'unknown_protocol', 'no_flow']) {
    t.ok((dropDelta[reason] ?? 0) > 0, `${reason} drops counted`);
  }
  t.ok(inputDrops(after) - inputDrops(before) > read / 2, 'most were dropped');
  const formerr = after.counters.dns_formerr - before.counters.dns_formerr;
  t.ok(formerr > 0, `malformed DNS answered FORMERR (${formerr}; ${after.counters.dns_dropped - before.counters.dns_dropped} dropped)`);
  t.equal(after.drops.internal_error, 0, 'no internal error');

  const c = await nsExec(topo.client, ['curl', '-sSf', '--max-time', '10', `http://${NGINX_IP}/hello`]);
  t.equal(c.stdout, 'hello from nginx\n', 'curl works afterwards');
  const d = await nsExec(topo.client, ['dig', '+short', '+time=3', 'other.example.com']);
  t.equal(d.stdout.trim(), NGINX_IP, 'dig works afterwards');
});
