// Memory stays bounded under load, end to end through a route-all gateway:
// a spoofed SYN flood, 10,000 idle connections, and a slow reader of 1 GB.
// RSS is the data plane's own (VmRSS of the pid in its status file).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { NGINX_IP, PEER_IP, PEER_PORT, makeTopology, startGateway, startNginx, startPeer, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(900_000);
const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const topo = await makeTopology(t);
await Promise.all([startNginx(t, topo), startPeer(t, topo)]);
// Two rounds of 10,000 connections within a minute need more than the default 28,232 ephemeral
// ports in the client namespace: the client's closed sockets wait in TIME-WAIT (60 s), and the
// gateway's upstream sockets, bound to the uplink address before connect, hold ports from the same
// range while they live and in their own TIME-WAIT (round 2 got EADDRNOTAVAIL for 820-1009).
await nsExec(topo.client, ['sysctl', '-qw', 'net.ipv4.ip_local_port_range=10000 65000']);
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsg0', '--connect-timeout', '1500']);
await waitForGateway(topo.client, stateDir, gw);

interface Status {
  pid: number;
  counters: Record<string, number>;
  drops: Record<string, number>;
  dataPlane?: { pid: number };
}
/** The live counters, as `tunsteer status --json` shows them. */
const status = async (): Promise<Status> =>
  (JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout) as { status: Status }).status;
const statusFile = (): Status => JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as Status;
const first = await status();
const dataPlanePid = first.dataPlane?.pid ?? first.pid;
/** The data plane's resident set in bytes. */
const rss = (): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${dataPlanePid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
};
/** Samples RSS every 500 ms until stopped; returns the highest seen. */
const sampleRss = () => {
  let max = rss();
  const timer = setInterval(() => (max = Math.max(max, rss())), 500);
  return { stop: () => (clearInterval(timer), Math.max(max, rss())) };
};
/** Polls the status file (written once a second) until pred holds or the time is up. */
const waitStatus = async (pred: (s: Status) => boolean, ms: number): Promise<Status> => {
  const until = Date.now() + ms;
  let s = statusFile();
  while (!pred(s) && Date.now() < until) {
    await sleep(500);
    s = statusFile();
  }
  return s;
};
const mb = (b: number) => (b / MiB).toFixed(1);
/** The data plane's own view of its memory (counters mem_*): V8 heap and Buffers beside RSS. */
const memory = (s: Status) => `heap ${mb(s.counters.mem_heap_used ?? NaN)}/${mb(s.counters.mem_heap_total ?? NaN)} MiB, external ${mb(s.counters.mem_external ?? NaN)} MiB`;

t.comment(`data plane pid ${dataPlanePid}, RSS at start ${mb(rss())} MiB`);

t.test('SYN flood of 100,000 spoofed SYNs: curl keeps working, RSS bounded, half-open entries drain', async (t) => {
  // With SYN cookies (backlog 1024) measured 154 MiB peak from ~118 MiB at start, 83,000-95,000
  // SYNs reaching the stack (before cookies: 403-582 MiB with a 4096 backlog evicting): bound at 2x.
  const RSS_BOUND = 320 * MiB;
  const before = statusFile();
  const sampler = sampleRss();
  // Bounded twice: by count (-c) and by time (timeout). Spoofed replies stay in the client namespace.
  const flood = nsExec(topo.client, ['timeout', '60', 'hping3', '-q', '-S', '-p', '80', '--rand-source', '-c', '100000', '-i', 'u100', NGINX_IP], {
    timeoutMs: 90_000,
    allowFail: true,
  });
  let fetched = 0;
  const failures: string[] = [];
  for (let i = 0; i < 40; i++) {
    const r = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', `http://${NGINX_IP}/hello`], { allowFail: true, timeoutMs: 20_000 });
    if (r.code === 0 && r.stdout.includes('hello from nginx')) fetched++;
    else failures.push(`${r.code}: ${r.stderr.trim()}`);
    await sleep(250);
  }
  const fr = await flood;
  const maxRss = sampler.stop();
  // The test's nginx has 4096 worker_connections: every admitted spoofed SYN costs one upstream connection.
  const nginxErrors = (() => {
    try {
      return readFileSync(join(topo.tmp, 'nginx-error.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('worker_connections')).length;
    } catch {
      return -1;
    }
  })();
  t.comment(`nginx "worker_connections are not enough": ${nginxErrors}`);
  const during = statusFile();
  t.comment(`hping3: ${fr.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const cookiesSent = during.counters.synCookiesSent - (before.counters.synCookiesSent ?? 0);
  const cookiesAccepted = during.counters.synCookiesAccepted - (before.counters.synCookiesAccepted ?? 0);
  t.comment(
    `max RSS during the flood ${mb(maxRss)} MiB (bound ${mb(RSS_BOUND)}); synRefused ${during.counters.synRefused - before.counters.synRefused}, tcpTotal +${during.counters.tcpTotal - before.counters.tcpTotal}, SYN cookies sent ${cookiesSent}, accepted ${cookiesAccepted}`,
  );
  // With the backlog full, SYNs are answered with SYN cookies: real clients get in, spoofed ones cost nothing.
  t.equal(fetched, 40, `${fetched}/40 curl fetches succeeded during the flood ${failures.slice(0, 3).join('; ')}`);
  t.ok(maxRss < RSS_BOUND, `RSS ${mb(maxRss)} MiB < ${mb(RSS_BOUND)} MiB`);
  t.ok(cookiesSent > 1_000, `the full backlog answered with SYN cookies: ${cookiesSent}`);
  t.equal(during.drops.syn_backlog_evicted, before.drops.syn_backlog_evicted, 'nothing evicted from the backlog');
  const seen = during.counters.tcpTotal - before.counters.tcpTotal + (during.counters.synRefused - before.counters.synRefused) + cookiesSent;
  // The kernel's TUN queue drops part of a flood this fast before the gateway reads it.
  t.ok(seen > 5_000, `the flood reached the stack: ${seen} SYNs admitted, refused or answered with a cookie`);
  t.ok(during.counters.tcpHalfOpen <= 1024, `the SYN backlog stayed within its cap: ${during.counters.tcpHalfOpen}`);
  t.comment(`backlog evictions ${during.drops.syn_backlog_evicted}, expiries ${during.drops.syn_backlog_timeout}`);
  t.equal(
    during.counters.synRefused - before.counters.synRefused,
    during.drops.syn_over_limit + during.drops.syn_over_memory - (before.drops.syn_over_limit + (before.drops.syn_over_memory ?? 0)),
    'every refused SYN is counted under a drop reason',
  );
  // Half-open entries are reset after 20 s (halfOpenTimeoutMs): allow 60 s.
  const drainFrom = Date.now();
  const after = await waitStatus((s) => (s.counters.tcp_state_syn_received ?? 0) === 0 && s.counters.tcpPending === 0, 60_000);
  t.comment(
    `after drain (${((Date.now() - drainFrom) / 1000).toFixed(1)} s after the flood ended): syn_received ${after.counters.tcp_state_syn_received ?? 0}, pending ${after.counters.tcpPending}, connections ${after.counters.connections}`,
  );
  t.equal(after.counters.tcp_state_syn_received ?? 0, 0, 'half-open entries drained');
  t.equal(after.counters.tcpPending, 0, 'no connection waits for its upstream');
  t.equal(after.counters.tcpHalfOpen, 0, 'the SYN backlog is empty');
});

const HOLD_CLIENT = `
const net = require('node:net');
const [host, port, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const socks = []; const errors = {}; let open = 0, failed = 0, closed = 0;
function one() {
  return new Promise((res) => {
    // "ECHO" makes the peer close when we do; nothing more is sent: the connection idles.
    const s = net.connect({ host, port }, () => { open++; s.write('ECHO\\n'); res(); });
    s.on('error', (e) => { failed++; errors[e.code] = (errors[e.code] || 0) + 1; res(); });
    s.on('close', () => { closed++; if (closing && closed === socks.length) { console.log(JSON.stringify({ closed })); process.exit(0); } });
    socks.push(s);
  });
}
let closing = false;
(async () => {
  for (let i = 0; i < n; i += 200) await Promise.all(Array.from({ length: Math.min(200, n - i) }, one));
  console.log(JSON.stringify({ open, failed, errors }));
  process.stdin.once('data', () => { closing = true; for (const s of socks) s.end(); });
})();
setTimeout(() => process.exit(2), 600000).unref();
`;

t.test('10,000 idle connections held, then closed, twice: the table empties and RSS does not grow from one round to the next', async (t) => {
  const N = 10_000;
  /** Opens N idle connections, holds them, closes them; RSS before, while held, and after. */
  const round = async (n: number) => {
    await waitStatus((s) => s.counters.connections === 0, 30_000);
    const base = rss();
    const client = spawnInNs(
      t,
      topo.client,
      ['sh', '-c', `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${process.execPath} -e "$0" ${PEER_IP} ${PEER_PORT} ${N}`, HOLD_CLIENT],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const opened = JSON.parse(await client.waitForLine((l) => l.includes('"open"'), 300_000)) as { open: number; failed: number; errors: Record<string, number> };
    const held = await waitStatus((s) => (s.counters.tcp_state_established ?? 0) >= N, 60_000);
    const heldRss = rss();
    t.comment(
      `round ${n}: opened ${opened.open} (failed ${opened.failed}${opened.failed ? ` ${JSON.stringify(opened.errors)}` : ''}); established ${held.counters.tcp_state_established}; RSS before ${mb(base)} MiB, held ${mb(heldRss)} MiB, ${Math.round((heldRss - base) / N)} bytes per connection`,
    );
    if (opened.failed)
      t.comment(`round ${n}: proxy failed ${held.counters.proxy_failed}, drops ${JSON.stringify(Object.fromEntries(Object.entries(held.drops).filter(([, v]) => v > 0)))}`);
    t.equal(opened.open, N, `round ${n}: all connections opened`);
    t.ok((held.counters.tcp_state_established ?? 0) >= N, `round ${n}: the gateway holds them all`);
    client.stdin!.write('close\n');
    const closedLine = JSON.parse(await client.waitForLine((l) => l.includes('"closed"'), 120_000)) as { closed: number };
    t.equal(closedLine.closed, N);
    const empty = await waitStatus((s) => s.counters.connections === 0, 60_000);
    t.equal(empty.counters.connections, 0, `round ${n}: connection table empty after close and TIME-WAIT`);
    // Closed flows leave the timer wheel when it next passes their slot (one turn is 41 s); the data
    // plane then runs one full GC (src/data-plane/idle-gc.ts, 45 s after the crowd fell) to give their memory back.
    const gcs = empty.counters.mem_idle_gcs ?? 0;
    const collected = await waitStatus((s) => (s.counters.mem_idle_gcs ?? 0) > gcs, 90_000);
    t.ok((collected.counters.mem_idle_gcs ?? 0) > gcs, `round ${n}: the data plane collected once the crowd had gone`);
    await sleep(2000);
    const afterRss = rss();
    const c = empty.counters;
    t.comment(`round ${n}: memory held ${memory(held)}; after close ${memory(statusFile())}`);
    t.comment(
      `round ${n}: RSS after close ${mb(afterRss)} MiB; half-open ${c.tcpHalfOpen}, SYN cookies sent ${c.synCookiesSent ?? 0}, accepted ${c.synCookiesAccepted ?? 0}, tcpTotal ${c.tcpTotal}`,
    );
    return { base, heldRss, afterRss };
  };
  // After the close V8 holds the crowd's garbage until something makes it collect; an idle
  // gateway allocates too little for that, so RSS stayed at its peak (264-288 MiB from a 122 MiB
  // start) until the data plane began to collect once after a crowd (src/data-plane/idle-gc.ts). Measured
  // since: 240 MiB held from 119, 158 after; the bound is half of what the crowd took given back.
  // A leak shows as growth from one round to the next: each connection left behind would cost its
  // ~12 KB again. (The timer wheel kept every closed flow until its 2 h keepalive deadline: round
  // 2 then grew by another 100-140 MiB.)
  const r1 = await round(1);
  const gaveBack = (r1.heldRss - r1.afterRss) / (r1.heldRss - r1.base);
  t.ok(
    gaveBack >= 0.5,
    `round 1: RSS back near its baseline: ${mb(r1.afterRss)} MiB after close, ${mb(r1.base)} before, ${mb(r1.heldRss)} held (${Math.round(gaveBack * 100)} % given back)`,
  );
  const r2 = await round(2);
  t.ok(r2.afterRss < r1.afterRss + 32 * MiB, `round 2 ends at ${mb(r2.afterRss)} MiB, within 32 MiB of round 1's ${mb(r1.afterRss)} MiB: nothing kept per connection`);
});

t.test('slow reader downloads 1 GB: RSS stays bounded, bytes arrive byte-exact', async (t) => {
  const df = await nsExec(topo.servers, ['df', '--output=avail', '-B1', topo.www]);
  const avail = Number(df.stdout.trim().split('\n').pop());
  if (!(avail > 3 * 1024 * MiB)) return t.skip(`only ${mb(avail)} MiB free for the 1 GB file`, () => {});
  const file = `${topo.www}/1g.bin`;
  t.teardown(() => nsExec(topo.servers, ['rm', '-f', file], { allowFail: true }));
  await nsExec(topo.servers, ['sh', '-c', `head -c 1G /dev/urandom > ${file}`], { timeoutMs: 120_000 });
  const want = (await nsExec(topo.servers, ['sha256sum', file], { timeoutMs: 120_000 })).stdout.split(' ')[0];
  const base = rss();
  // Measured +22 MiB over the baseline for the whole 1 GiB: bound the growth at +64 MiB
  // (the baseline itself depends on what earlier subtests left in V8's heap).
  const RSS_BOUND = base + 64 * MiB;
  const sampler = sampleRss();
  // 25 MB/s: the 1 GiB takes ~43 s; curl reads no faster, so TCP backpressure must reach nginx.
  const r = await nsExec(topo.client, ['sh', '-c', `curl -sSf --max-time 120 --limit-rate 25M http://${NGINX_IP}/1g.bin | sha256sum`], { timeoutMs: 150_000, allowFail: true });
  const maxRss = sampler.stop();
  t.comment(`RSS baseline ${mb(base)} MiB, max during the slow 1 GiB download ${mb(maxRss)} MiB (bound ${mb(RSS_BOUND)})`);
  t.equal(r.stdout.split(' ')[0], want, `1 GiB byte-exact ${r.stderr.trim()}`);
  t.ok(maxRss < RSS_BOUND, `RSS ${mb(maxRss)} MiB < ${mb(RSS_BOUND)} MiB`);
});
