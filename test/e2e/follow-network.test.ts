// The network changes under a running route-all gateway (issue 21). Each
// change is made twice in its own topology: first over the kernel path (no
// gateway), which is the oracle, then through the gateway. In both runs a paced
// download is under way when the change happens; through the gateway it must
// end as it ended over the kernel path (complete with intact bytes, stalled, or
// the same error), new connections must work again (or fail with the kernel
// path's error while there is no uplink), `tunsteer status` and the log must
// show the change with its time, and after the gateway exits the namespace's
// routes and rules must be exactly what the kernel-path run left: the network
// as it stood at exit, not at start. Timings are for bench/uplink-change.ts.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { nsExec, snapshotRouting, spawnNodeInNs, type NsChild } from '../helpers/netns.js';
import { tunsteerArgv } from '../helpers/topology.js';
import { CHANGE_PEER, PEER, PEER6, PEER_PORT, movingNetwork, upFor, type MovingNetwork } from '../helpers/moving-network.js';

t.setTimeout(900_000);

const PORT = PEER_PORT;
const HELPER = CHANGE_PEER;
/**
 * The paced download: 60 chunks of 8 KiB, one every 50 ms (3 s); "stalled" after 10 s without a byte
 * (longer than a 4 s outage plus the server's retransmission backoff).
 */
const STALL_MS = 10_000;
const PACED = ['60', '50', String(STALL_MS)];

type Net = MovingNetwork;
const network = movingNetwork;

const sh = async (ns: string, cmd: string): Promise<void> => {
  await nsExec(ns, ['sh', '-c', cmd]);
};
const sortedLines = (text: string) => text.split('\n').sort();
const last = (out: string) => JSON.parse(out.trim().split('\n').pop() || '{}');

async function connectOnce(n: Net, host: string): Promise<{ ok: boolean; code?: string; from?: string }> {
  return last((await nsExec(n.topo.client, [process.execPath, '--import', 'tsx', HELPER, 'connect', host, String(PORT)], { timeoutMs: 30_000 })).stdout);
}

/** from: only a connection from that address counts (one from the old address, while the change reaches every worker, is listed in codes). */
async function untilWorks(n: Net, host: string, from?: string): Promise<{ ok: boolean; from?: string; ms: number; codes: string[] }> {
  const args = [process.execPath, '--import', 'tsx', HELPER, 'until', host, String(PORT), '15000', ...(from ? [from] : [])];
  return last((await nsExec(n.topo.client, args, { timeoutMs: 60_000 })).stdout);
}

async function startDownload(t: Test, n: Net, host: string): Promise<NsChild> {
  const c = spawnNodeInNs(t, n.topo.client, HELPER, ['paced', host, String(PORT), ...PACED]);
  await c.waitForLine((l) => l.includes('"started"'), 20_000);
  await new Promise((r) => setTimeout(r, 300)); // well into it
  return c;
}

async function outcome(c: NsChild): Promise<{ outcome: string; code?: string; intact: boolean; bytes: number }> {
  return JSON.parse(await c.waitForLine((l) => l.includes('"outcome"'), 60_000));
}

async function statusText(n: Net, stateDir: string): Promise<string> {
  return (await nsExec(n.topo.client, tunsteerArgv(['status', '--state-dir', stateDir]), { allowFail: true })).stdout;
}

/** Polls `tunsteer status` until its text matches (the status file is written once a second). */
async function statusShows(n: Net, stateDir: string, re: RegExp): Promise<string> {
  let text = '';
  for (let i = 0; i < 50; i++) {
    text = await statusText(n, stateDir);
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 200));
  }
  return text;
}

interface Scenario {
  /** Connections to this host (IPv4 or IPv6). */
  host: string;
  /** Before the runs (e.g. IPv6 on the link). */
  setup?(n: Net): Promise<void>;
  /** The change; may return while the network is still changing (e.g. during an outage). */
  change(n: Net): Promise<void>;
  /** Puts the network back as it was before change(). */
  revert(n: Net): Promise<void>;
  /** What a new connection gets right after the change: 'ok' (it works again) or the kernel path's error code. */
  after: 'ok' | 'ENETUNREACH';
  /** Waits until the change is over (e.g. a link back up has its IPv6 link-local route), before the at-exit snapshots. */
  settle?(n: Net): Promise<void>;
  /** Extra checks through the gateway right after the change (and the new-connection check). */
  whileChanged?(t: Test, n: Net, stateDir: string): Promise<void>;
  /** Extra checks while the gateway runs, once the transfer under way has ended. */
  during?(t: Test, n: Net, stateDir: string, gw: NsChild): Promise<void>;
  /** The source a new connection comes from after the change (both paths). */
  from?: string;
}

async function run(t: Test, s: Scenario): Promise<void> {
  const n = await network(t);
  await s.setup?.(n);
  const original = await snapshotRouting(n.topo.client);

  // 1. the kernel path: the oracle
  const kDl = await startDownload(t, n, s.host);
  await s.change(n);
  const kNew: { ok: boolean; code?: string; from?: string } = s.after === 'ok' ? await untilWorks(n, s.host) : await connectOnce(n, s.host);
  const kEnd = await outcome(kDl);
  await s.settle?.(n);
  const atExit = await snapshotRouting(n.topo.client);
  await s.revert(n);
  // the same routes and rules (a link that went down and up lists its IPv6 routes in another order)
  t.strictSame(sortedLines((await snapshotRouting(n.topo.client)).text), sortedLines(original.text), 'the network put back for the run through the gateway');
  if (s.after === 'ok') t.ok(kNew.ok, `kernel path: new connections work after the change (${JSON.stringify(kNew)})`);
  else t.equal(kNew.code, s.after, `kernel path: a new connection fails with ${s.after}`);

  // 2. through the gateway
  const stateDir = join(n.topo.tmp, 'state');
  const gw = await upFor(t, n.topo.client, stateDir, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsn0', '--connect-timeout', '3000']);
  t.match((await connectOnce(n, s.host)).ok, true, 'through the gateway before the change');
  const gDl = await startDownload(t, n, s.host);
  const changedAt = Date.now();
  await s.change(n);
  if (s.after === 'ok') {
    const r = await untilWorks(n, s.host, s.from);
    t.ok(r.ok, `through the gateway: new connections work after the change (${r.ms} ms after the change was made, ${JSON.stringify(r.codes)})`);
    if (s.from) {
      t.equal(r.from, s.from, `the new connections come from the new uplink address ${s.from} (${r.ms} ms after the change)`);
      t.equal(kNew.from, s.from, 'as over the kernel path');
    }
  } else {
    const r = await connectOnce(n, s.host);
    t.equal(r.code, s.after, `through the gateway: a new connection fails with ${s.after}, as over the kernel path (${JSON.stringify(r)})`);
  }
  await s.whileChanged?.(t, n, stateDir);
  const gEnd = await outcome(gDl);
  t.equal(gEnd.outcome, kEnd.outcome, `the transfer under way ends as over the kernel path: ${kEnd.outcome}${kEnd.code ? ` ${kEnd.code}` : ''}`);
  t.equal(gEnd.code, kEnd.code, 'with the same error');
  t.ok(gEnd.intact, 'what arrived is what the server sent');
  await s.during?.(t, n, stateDir, gw);
  const line = gw
    .stdoutLines()
    .map((l) => JSON.parse(l))
    .find((l) => l.msg === 'uplink changed' || l.msg === 'no uplink');
  t.ok(line, 'the log shows the change');
  t.ok(line && Date.parse(line.time) >= changedAt - 1000, `with its time (${line?.time})`);
  const st = await statusShows(n, stateDir, /network changes\n {2}\d{4}-/);
  t.match(st, /network changes\n {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}/, '`tunsteer status` lists the change with its time');

  await s.settle?.(n);
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0, 'exit 0 after a clean stop on SIGTERM');
  t.equal((await snapshotRouting(n.topo.client)).text, atExit.text, "after exit: the routes and rules as the network left them, none of the gateway's");
}

t.test('address change as DHCP: old address removed, new one added, default route re-added', (t) =>
  run(t, {
    host: PEER,
    change: (n) => sh(n.topo.client, `ip addr del 192.0.2.1/24 dev ${n.if1} && ip addr add 192.0.2.5/24 dev ${n.if1} && ip route add default via 192.0.2.2`),
    revert: (n) => sh(n.topo.client, `ip addr del 192.0.2.5/24 dev ${n.if1} && ip addr add 192.0.2.1/24 dev ${n.if1} && ip route add default via 192.0.2.2`),
    after: 'ok',
    from: '192.0.2.5',
    during: async (t, n, stateDir) => {
      const rules = (await nsExec(n.topo.client, ['ip', 'rule'])).stdout;
      t.match(rules, /from 192\.0\.2\.5 lookup main/, 'the new address has its bypass');
      t.notMatch(rules, /192\.0\.2\.1\b/, 'the old address is gone, and so are its rules');
      t.match(await statusText(n, stateDir), /sockets bound to 192\.0\.2\.5/);
    },
  }),
);

t.test('default route to another gateway on another interface (both links stay up)', (t) =>
  run(t, {
    host: PEER,
    change: (n) => sh(n.topo.client, `ip route replace default via 198.51.100.2 dev ${n.if2}`),
    revert: (n) => sh(n.topo.client, `ip route replace default via 192.0.2.2 dev ${n.if1}`),
    after: 'ok',
    from: '198.51.100.1',
    during: async (t, n) => {
      const rules = (await nsExec(n.topo.client, ['ip', 'rule'])).stdout;
      t.match(rules, /from 198\.51\.100\.1 lookup main/, 'the new source has its bypass');
      t.match(rules, /from 192\.0\.2\.1 lookup main/, 'the old one keeps it while it is on the host: connections bound to it go on');
      t.match(rules, /to 198\.51\.100\.2 lookup main/, 'the new next hop stays direct');
      t.notMatch(rules, /to 192\.0\.2\.2 lookup main/, 'the old next hop is steered again');
    },
  }),
);

t.test('uplink removed (cable out), then restored', (t) => {
  // the link goes down, its routes with it, for longer than the download's stall limit (so the transfer
  // under way stalls on both paths, whatever the timing), and stays down until what is checked during the
  // outage has been checked (on a loaded machine a fixed outage could end before the checks ran); then it
  // comes back and DHCP puts the default route back
  let back: Promise<unknown> = Promise.resolve();
  let release = () => {};
  const OUTAGE_MS = STALL_MS + 2000;
  return run(t, {
    host: PEER,
    change: async (n) => {
      await sh(n.topo.client, `ip link set ${n.if1} down`);
      const released = new Promise<void>((r) => (release = r));
      back = Promise.all([new Promise((r) => setTimeout(r, OUTAGE_MS)), released]).then(() => sh(n.topo.client, `ip link set ${n.if1} up && ip route add default via 192.0.2.2`));
    },
    revert: async () => {
      release();
      await back;
    },
    // the link is back once the kernel has given it its IPv6 link-local route again (it does so a moment after link up)
    settle: async (n) => {
      release(); // the kernel path's run checks nothing during the outage
      await back;
      for (let i = 0; i < 50; i++) {
        const r6 = (await nsExec(n.topo.client, ['ip', '-6', 'route', 'show', 'table', 'all', 'dev', n.if1])).stdout;
        if (['fe80::/64', 'local fe80::', 'multicast ff00::/8'].every((x) => r6.includes(x))) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    after: 'ENETUNREACH',
    whileChanged: async (t, n, stateDir) => {
      try {
        t.match(await statusShows(n, stateDir, /uplink +no uplink/), /uplink +no uplink since \d{4}-/, '`tunsteer status` says "no uplink", since when');
        const rules = (await nsExec(n.topo.client, ['ip', 'rule'])).stdout;
        t.match(rules, /from 192\.0\.2\.1 unreachable/, "the gateway's own sockets fail (ENETUNREACH) instead of looping into the TUN");
        t.notMatch(rules, /to 192\.0\.2\.2 lookup main/, 'no uplink, no next hop');
      } finally {
        release();
      }
    },
    during: async (t, n, stateDir) => {
      await back;
      const r = await untilWorks(n, PEER);
      t.ok(r.ok, `the uplink is back: new connections work again by themselves (${r.ms} ms)`);
      t.match(await statusShows(n, stateDir, /uplink +\S+ via 192\.0\.2\.2/), /uplink +\S+ via 192\.0\.2\.2, sockets bound to 192\.0\.2\.1/);
    },
  });
});

t.test('IPv6 added, then removed', (t) =>
  run(t, {
    host: PEER6,
    setup: async (n) => {
      await sh(n.topo.client, `ip -6 addr add 2001:db8:1::1/64 dev ${n.if1} nodad && ip -6 route add default via 2001:db8:1::2`);
    },
    change: (n) => sh(n.topo.client, `ip -6 route del default via 2001:db8:1::2 && ip -6 addr del 2001:db8:1::1/64 dev ${n.if1}`),
    revert: (n) => sh(n.topo.client, `ip -6 addr add 2001:db8:1::1/64 dev ${n.if1} nodad && ip -6 route add default via 2001:db8:1::2`),
    after: 'ENETUNREACH',
    during: async (t, n, stateDir) => {
      t.match(await statusShows(n, stateDir, /uplink6 +no IPv6 uplink/), /uplink6 +no IPv6 uplink/, 'status: no IPv6 uplink');
      // and back: IPv6 appears again, new IPv6 connections work
      await sh(n.topo.client, `ip -6 addr add 2001:db8:1::1/64 dev ${n.if1} nodad && ip -6 route add default via 2001:db8:1::2`);
      const r = await untilWorks(n, PEER6);
      t.ok(r.ok, `IPv6 appears: new IPv6 connections work (${r.ms} ms)`);
      t.equal(r.from, '2001:db8:1::1');
      await sh(n.topo.client, `ip -6 route del default via 2001:db8:1::2 && ip -6 addr del 2001:db8:1::1/64 dev ${n.if1}`);
      t.equal((await untilGone(n, PEER6)).code, 'ENETUNREACH', 'and gone again');
    },
  }),
);

/** Connects until a connection fails (the change reached the data plane), at most 10 s. */
async function untilGone(n: Net, host: string): Promise<{ ok: boolean; code?: string }> {
  let r: { ok: boolean; code?: string } = { ok: true };
  for (let i = 0; i < 50 && r.ok; i++) {
    r = await connectOnce(n, host);
    if (r.ok) await new Promise((res) => setTimeout(res, 200));
  }
  return r;
}
