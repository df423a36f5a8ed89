// The real clients keep every byte exact through an impaired link: 2 % loss
// both ways on the servers' veth and on the TUN (nftables numgen drop rules
// where packets arrive, and the faulty TUN's read side for the client's
// packets to the gateway: test/helpers/real/impair.ts says why never on
// output), then delay, reordering and duplication through the faulty
// TUN (TUNSTEER_TEST_FAULTS, src/tun/faulty-tun.ts). Route-all, IPv4 and IPv6.
// Timings under the same impairments: bench/loss.ts and bench/RESULTS.md.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { nsExec } from '../helpers/netns.js';
import { NGINX_IP, NGINX_IP6, ROOT, addIpv6, makeTopology, startGateway, waitForGateway } from '../helpers/topology.js';
import { DIALOGUE_PORT, TLS_PORT, WS_PORT, fileSha, randomFile, startDialogue, startGreeting, startSshd, startTlsNginx, startWsEcho } from '../helpers/real/servers.js';
import { greetingChecks, sshChecks, type Exec } from '../helpers/real/server-first-checks.js';
import { clearDrops, dropArriving, dropped, vethOf } from '../helpers/real/impair.js';

t.setTimeout(1_200_000);
const topo = await makeTopology(t);
await addIpv6(topo);
const addrs = [NGINX_IP, NGINX_IP6];
const hosts = { v4: NGINX_IP, v6: NGINX_IP6 };
const sha = await startGreeting(t, topo.servers, topo.tmp, addrs);
const sshd = await startSshd(t, topo.servers, topo.tmp, addrs);
await startDialogue(t, topo.servers, addrs);
await startWsEcho(t, topo.servers, addrs);
const bigSha = randomFile(join(topo.www, 'big.bin'), 20);
const cert = await startTlsNginx(t, topo.servers, topo.tmp, topo.www, addrs);
const inClient: Exec = (argv, timeoutMs) => nsExec(topo.client, argv, { allowFail: true, timeoutMs });
const TUN = 'tsl0';

// A greeting may wait 60 s, not the 15 s of the lossless tests: the servers'
// Linux resends an unanswered SYN-ACK after 1, 3, 7 and 15 s, so a lost last
// ACK of the handshake delays its greeting by whole steps of that ladder (a
// 3 s wait after an instant connect is the commonest long one, on both
// paths). Measured with 2 % at each drop point (20,000 greetings, 500 at a
// time): over the kernel path, with its two drop points, 0.26 % took 2 s or
// more and the longest 7 s; through the gateway, with four, 0.75 % and 8 s.
// CI once met the 15 s step (1 in 100 as ETIMEDOUT).
const GREETING_IDLE_MS = 60_000;

/** Every real client once, byte-exact. */
async function allClients(t: Test): Promise<void> {
  await greetingChecks(t, inClient, hosts, sha, 100, GREETING_IDLE_MS);
  await sshChecks(t, inClient, sshd, NGINX_IP, { sessions: 10, mb: 20 });
  for (const host of addrs) {
    const u = host.includes(':') ? `[${host}]` : host;
    const d = await inClient([process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/real/dialogue-peer.ts'), 'client', host, String(DIALOGUE_PORT), '20'], 120_000);
    t.equal(d.stdout.trim(), JSON.stringify({ ok: true, rounds: 20 }), `dialogue ${host} ${d.stderr.slice(-200)}`);
    const w = await inClient([process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/real/ws-peer.ts'), 'client', `ws://${u}:${WS_PORT}/`, '30'], 120_000);
    t.equal(w.stdout.trim(), JSON.stringify({ ok: true, messages: 30 }), `WebSocket ${host} ${w.stderr.slice(-200)}`);
    const file = join(topo.tmp, 'got.bin');
    const c = await inClient(
      ['curl', '-sS', '--http2', '--tlsv1.3', '--cacert', cert, '--max-time', '150', '-o', file, '-w', '%{http_version}', `https://${u}:${TLS_PORT}/big.bin`],
      180_000,
    );
    t.equal(c.stdout, '2', `curl HTTP/2 ${host} ${c.stderr}`);
    t.equal(fileSha(file), bigSha, `TLS + HTTP/2 ${host}: 20 MB byte-exact`);
    rmSync(file, { force: true });
  }
}

async function gateway(t: Test, faults?: string): Promise<void> {
  const dir = join(topo.tmp, `state-${faults ? 'faulty' : 'plain'}`);
  const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', TUN, '--log-level', 'warn'], {
    env: { ...process.env, TUNSTEER_TEST_FAULTS: faults ?? '' },
  });
  t.teardown(async () => {
    gw.kill('SIGTERM');
    await gw.exited();
  });
  await waitForGateway(topo.client, dir, gw);
}

t.test("2 % loss both ways on the servers' veth and on the TUN", async (t) => {
  await gateway(t, 'rx:loss=0.02,seed=14');
  await dropArriving(topo.servers, [await vethOf(topo.servers)], 2);
  await dropArriving(topo.client, [await vethOf(topo.client), TUN], 2);
  t.teardown(() => Promise.all([clearDrops(topo.servers), clearDrops(topo.client)]));
  await allClients(t);
  const lost = (await dropped(topo.servers)) + (await dropped(topo.client));
  t.ok(lost > 100, `the rules dropped packets (${lost})`);
});

t.test('delay 5 ms ± 3, 2 % reordered, 1 % duplicated both ways through the faulty TUN', async (t) => {
  await gateway(t, 'delay=5,jitter=3,reorder=0.02,dup=0.01,seed=14');
  await allClients(t);
});
