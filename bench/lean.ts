// The lean figures of issue 16 in one run, the kernel path beside the gateway:
//   idle      CPU of both gateway processes over IDLE_S seconds with no traffic, and their RSS
//   conns     RSS per idle established connection (N held by bench/hold-conns.ts; --conns
//             1000,10000,100000 for several sizes, each on a fresh gateway), 2 s and
//             --settle-seconds later, beside a plain Node proxy holding as many (the kernel path);
//             then the stack's counts, and whether a new relayed connection (curl to nginx) is
//             answered while they are held; then they are closed and the table must empty.
//             --target dns: the connections go to the gateway's own DNS (DNS over TCP, served
//             in the data plane: no upstream socket, so no fd each, and 100,000 fit under this
//             VM's hard limit of 20,000 fds), from several source addresses (one per holder process),
//             with --dns-tcp-idle-timeout 3600000 so the idle period does not close them; no
//             plain-proxy baseline (it needs two fds per connection). --beyond K: with N held,
//             K more are tried (refused by --max-connections when N is the limit), one holder's
//             share is closed, and K tried again
//   latency   one keep-alive connection, wrk --latency: p50 / p90 / p99 / max, kernel and gateway
//             interleaved (ROUNDS each), so a busy machine slows both alike
//   close     wrk with a new connection per request (Connection: close), then the
//             TIME-WAIT sockets in the client's namespace by local address and in the
//             servers' namespace: who closed first
//   offload   (only when asked) iperf3 single stream up and down through gateways at MTU
//             1500 and 65520 with offloads off and on, beside the kernel path, with
//             the data plane's packets in and out; ROUNDS rounds, each the kernel path then
//             every gateway, the load average around each; medians and the ratio of MTU
//             1500 to 65520 at the end. --compare DIR: another build (its dist/) measured
//             in the same rounds, e.g. the base commit's, for a before/after (--compare-modes:
//             its offload modes, default the same)
//
//   node --import tsx bench/lean.ts [--only idle,conns,latency,close] [--conns 1000[,10000...]]
//        [--target peer|dns] [--beyond K] [--close-burst] [--tun-txqueuelen N]
//        [--settle-seconds 15] [--idle-gc] [--no-baseline] [--node-flags '--max-semi-space-size=2'] [--snapshots DIR]
//        [--idle-seconds 20] [--rounds 3] [--wrk-seconds 5] [--source] [-- extra gateway flags]
//   node --import tsx bench/lean.ts --only offload [--rounds 3] [--wrk-seconds 5]
//        [--mtus 1500,65520] [--offload-modes off,on] [--compare DIR [--compare-modes on]]
//
// Prints the load average before and after (2 shared cores: the figures are noisy).
// Builds and removes its own namespaces; traffic stays between them.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DNS_IP,
  IPERF_IP,
  NGINX_IP,
  PEER_IP,
  PEER_PORT,
  ROOT,
  clientResolvConf,
  makeTopology,
  startDnsPeer,
  startIperf,
  startNginx,
  tunsteerArgv,
  waitForGateway,
} from '../test/helpers/topology.js';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { cpuSeconds, median, memText, rssBytes, runBench, teardownHost, toMs, waitFor } from './bench-kit.js';
import { PLAIN_PROXY_IP, PLAIN_PROXY_PORT, RAISE_FDS, fdLimit, holdConns, prepareForConns, prepareForDnsConns, startPlainProxy } from './idle-conns.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    only: { type: 'string' },
    conns: { type: 'string' },
    target: { type: 'string' },
    beyond: { type: 'string' },
    /** conns: the holders destroy every socket at once and exit (the old way), to see what the gateway's table keeps */
    'close-burst': { type: 'boolean' },
    /** conns: the TUN's queue toward the data plane (txqueuelen) set to this once the gateway is up (the kernel's default: 500) */
    'tun-txqueuelen': { type: 'string' },
    'settle-seconds': { type: 'string' },
    'node-flags': { type: 'string' },
    'no-baseline': { type: 'boolean' },
    /** conns: also wait for the data plane's own idle GC (a settled crowd, 45 s) and measure after it */
    'idle-gc': { type: 'boolean' },
    'idle-seconds': { type: 'string' },
    rounds: { type: 'string' },
    'wrk-seconds': { type: 'string' },
    source: { type: 'boolean' },
    /** write the data plane's heap snapshots (idle, and with the connections held) into this directory */
    snapshots: { type: 'string' },
    /** offload mode: another build to measure (its dist/), e.g. the base commit's, and which settings */
    root: { type: 'string' },
    'offload-modes': { type: 'string' },
    mtus: { type: 'string' },
    compare: { type: 'string' },
    'compare-modes': { type: 'string' },
  },
});
const only = values.only?.split(',') ?? ['idle', 'conns', 'latency', 'close'];
const CONNS = (values.conns ?? '1000').split(',').map(Number);
const SETTLE_S = Number(values['settle-seconds'] ?? 15);
/** Extra node flags for both gateway processes (the supervisor passes its own to the data plane), e.g. --max-semi-space-size=2. */
const NODE_FLAGS = values['node-flags']?.split(' ').filter(Boolean) ?? [];
const IDLE_S = Number(values['idle-seconds'] ?? 20);
const ROUNDS = Number(values.rounds ?? 3);
const WRK_S = Number(values['wrk-seconds'] ?? 5);
const TARGET = values.target ?? 'peer';
if (TARGET !== 'peer' && TARGET !== 'dns') throw new Error(`--target: peer or dns, not ${TARGET}`);
const BEYOND = Number(values.beyond ?? 0);
/** --target dns: the idle period the gateway runs with, so the bench's idle connections stay (the default, 30 s, would close them). */
const DNS_HOLD_IDLE_MS = 3_600_000;
const { host, cleanup } = teardownHost();
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

async function wrk(ns: string, conns: number, close: boolean) {
  const r = await nsExec(
    ns,
    ['wrk', '-t', String(Math.min(2, conns)), '-c', String(conns), '-d', `${WRK_S}s`, '--latency', ...(close ? ['-H', 'Connection: close'] : []), `http://${NGINX_IP}/hello`],
    {
      timeoutMs: (WRK_S + 30) * 1000,
    },
  );
  const pct = (p: string) => toMs(new RegExp(`^\\s*${p}%\\s+([\\d.]+\\w+)`, 'm').exec(r.stdout)?.[1]);
  const max = toMs(/^\s*Latency\s+\S+\s+\S+\s+([\d.]+\w+)/m.exec(r.stdout)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
  return { rps: Number(/Requests\/sec:\s*([\d.]+)/.exec(r.stdout)?.[1] ?? 0), requests, p50: pct('50'), p90: pct('90'), p99: pct('99'), max };
}

/** TIME-WAIT sockets in a namespace, by local address. */
async function timeWait(ns: string): Promise<Record<string, number>> {
  const r = await nsExec(ns, ['ss', '-Htan', 'state', 'time-wait']);
  const out: Record<string, number> = {};
  for (const line of r.stdout.split('\n')) {
    const local = line.trim().split(/\s+/)[2];
    if (!local) continue;
    const addr = local.slice(0, local.lastIndexOf(':'));
    out[addr] = (out[addr] ?? 0) + 1;
  }
  return out;
}

async function main() {
  console.log(`load average before: ${load()}  (${new Date().toISOString()})`);
  const topo = await makeTopology(host);
  await startNginx(host, topo);
  spawnInNs(host, topo.servers, ['sh', '-c', `ulimit -n 65536; exec ${process.execPath} --import tsx ${join(ROOT, 'test/helpers/tcp-peer.ts')} server ${PEER_IP} ${PEER_PORT}`]);
  await waitFor(async () => (await nsExec(topo.servers, ['ss', '-Hltn', `src ${PEER_IP}:${PEER_PORT}`])).stdout.trim() !== '');
  // the client namespace's own resolver file (never this machine's), naming the test DNS server the gateway forwards to
  await clientResolvConf(host, topo.client, `nameserver ${DNS_IP}\n`);
  await startDnsPeer(host, topo);

  if (only.includes('offload')) return offloads(topo.client, await startIperf(host, topo));
  // the kernel path first where it needs the namespace without the gateway
  const kernelLat: Awaited<ReturnType<typeof wrk>>[] = [];
  const gwLat: Awaited<ReturnType<typeof wrk>>[] = [];
  if (only.includes('close')) {
    const r = await wrk(topo.client, 16, true);
    console.log(
      `close, kernel path: ${r.rps.toFixed(0)} conn/s, ${r.requests} connections; TIME-WAIT client ns`,
      await timeWait(topo.client),
      'servers ns',
      await timeWait(topo.servers),
    );
  }

  const stateDir = mkdtempSync(join(tmpdir(), 'tsE-lean-'));
  host.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const mainJs = join(values.root ?? ROOT, 'dist/src/cli/main.js');
  const argv = existsSync(mainJs) && !values.source ? [process.execPath, ...NODE_FLAGS, mainJs] : tunsteerArgv([]);
  const snapDir = values.snapshots;
  // node writes a heap snapshot on SIGUSR2 into --diagnostic-dir; the data plane (the second pid) inherits NODE_OPTIONS
  // and every gateway gets bench/gc-on-signal: SIGURG, then a full GC in the data plane (collect() below)
  const gcPreload = existsSync(join(ROOT, 'dist/bench/gc-on-signal.js')) && !values.source ? join(ROOT, 'dist/bench/gc-on-signal.js') : join(ROOT, 'bench/gc-on-signal.ts');
  const nodeOptions = `${process.env.NODE_OPTIONS ?? ''} --import=${gcPreload}${snapDir ? ` --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapDir}` : ''}`;
  const env = { ...process.env, NODE_OPTIONS: nodeOptions };
  /** A full GC in the process, settled. */
  const collect = async (pid: number) => {
    process.kill(pid, 'SIGURG');
    await new Promise((r) => setTimeout(r, 1500));
    // a compacting GC of a big heap takes seconds and unmaps the evacuated pages after it
    // (100,000 connections: RSS 1,060 MB right after, 825 MB a few seconds later): until RSS holds
    for (let last = rssBytes([pid]), waited = 0; waited < 20_000; waited += 1000) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = rssBytes([pid]);
      if (Math.abs(now - last) < 1048576) break;
      last = now;
    }
  };
  const snapshot = async (pid: number) => {
    if (!snapDir) return;
    const before = new Set(readdirSync(snapDir));
    process.kill(pid, 'SIGUSR2');
    // written synchronously, seconds for a big heap: done once the new file stops growing
    let size = -1;
    for (let waited = 0; waited < 120_000; waited += 2000) {
      await new Promise((r) => setTimeout(r, 2000));
      const f = readdirSync(snapDir).find((x) => !before.has(x));
      const now = f ? statSync(join(snapDir, f)).size : -1;
      if (now > 0 && now === size) break;
      size = now;
    }
  };
  const start = async () => {
    // fds for 100,000 connections (the data plane inherits the limit; node raises its soft limit to it)
    const dnsIdle = TARGET === 'dns' ? ['--dns-tcp-idle-timeout', String(DNS_HOLD_IDLE_MS)] : [];
    const up = [...argv, 'up', '--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsl0', '--log-level', 'warn', ...dnsIdle, ...positionals];
    const gw = spawnInNs(host, topo.client, ['sh', '-c', `${RAISE_FDS}; exec ${up.map((a) => `'${a}'`).join(' ')}`], { env });
    await waitForGateway(topo.client, stateDir, gw);
    if (values['tun-txqueuelen']) await nsExec(topo.client, ['ip', 'link', 'set', 'dev', 'tsl0', 'txqueuelen', values['tun-txqueuelen']]);
    const st = JSON.parse((await nsExec(topo.client, [...argv, 'status', '--state-dir', stateDir, '--json'])).stdout).status;
    const pids = [gw.pid!, st.dataPlane?.pid ?? gw.pid!].filter((x, i, a) => a.indexOf(x) === i);
    return { gw, pids };
  };
  const mem = async () => {
    await new Promise((r) => setTimeout(r, 1100)); // the next status publish
    const c = JSON.parse((await nsExec(topo.client, [...argv, 'status', '--state-dir', stateDir, '--json'])).stdout).status.counters;
    return Object.fromEntries(Object.entries(c).filter(([k]) => k.startsWith('mem_') && k !== 'mem_idle_gcs')) as Record<string, number>;
  };
  const mb = (b: number) => (b / 1048576).toFixed(1);
  /** N idle connections through the running gateway: RSS per connection 2 s and SETTLE_S s after they are up, and the CPU they cost. */
  const heldConns = async (n: number, pids: number[]) => {
    await new Promise((r) => setTimeout(r, 3000)); // start-up settles
    const dp = pids[pids.length - 1];
    await collect(dp);
    const m0 = await mem();
    const base = rssBytes(pids);
    const dpBase = rssBytes([dp]);
    if (!only.includes('idle')) await snapshot(dp);
    console.log(`conns ${n}: load ${load()}; gateway before: ${memText(pids)}`);
    const t0 = Date.now();
    const burst = values['close-burst'] ? ['--close-burst'] : [];
    const { holders, held, line, release } =
      TARGET === 'dns' ? await holdConns(host, topo.client, DNS_IP, [53], n, locals, burst) : await holdConns(host, topo.client, PEER_IP, ports, n, undefined, burst);
    const upS = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    // per connection: by the gateway's own count (a connection the client thinks up and the gateway never saw costs it nothing)
    const counted = (await counters()).connections;
    if (counted !== held) console.log(`conns ${n}: the holders have ${held} up, the gateway counts ${counted}: per-connection figures by the gateway's count`);
    const early = rssBytes(pids);
    const c0 = cpuSeconds(pids);
    await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
    const cpu = cpuSeconds(pids) - c0;
    const settled = rssBytes(pids);
    const dpHeld = rssBytes([dp]);
    if (values['idle-gc']) {
      // the data plane's own collection once the crowd has settled (src/data-plane/idle-gc.ts, 45 s)
      const gcs = async () => (await counters()).mem_idle_gcs;
      const before = await gcs();
      const t1 = Date.now();
      while (Date.now() - t1 < 100_000 && (await gcs()) === before) await new Promise((r) => setTimeout(r, 2000));
      await new Promise((r) => setTimeout(r, 3000)); // the unmapped pages leave RSS a moment later
      const dpOwn = rssBytes([dp]);
      const c = await counters();
      // the connections must still be there: a drop would pass for memory given back
      console.log(`conns ${n}: after the wait the gateway holds ${c.connections} connections (${c.tcp_state_established} established)`);
      console.log(
        `conns ${n}: the data plane's own idle GC ${(await gcs()) > before ? `ran ${((Date.now() - t1) / 1000).toFixed(0)} s after the settle window` : 'did not run within 100 s'}: ${mb(dpBase)} -> ${mb(dpOwn)} MB = ${((dpOwn - dpBase) / counted).toFixed(0)} bytes per connection`,
      );
    }
    await collect(dp);
    const dpSettled = rssBytes([dp]);
    const m1 = await mem();
    await snapshot(pids[pids.length - 1]);
    console.log(`conns ${n}: ${held} held (${JSON.stringify(line)}) in ${upS.toFixed(1)} s; gateway with them: ${memText(pids)}`);
    console.log(`conns ${n}: data plane per connection (bytes):`, Object.fromEntries(Object.keys(m1).map((k) => [k, Math.round((m1[k] - m0[k]) / Math.max(1, counted))])));
    console.log(
      `idle connections: ${counted} held, RSS ${mb(base)} -> ${mb(early)} (2 s) -> ${mb(settled)} MB (${SETTLE_S + 2} s) = ${((early - base) / counted).toFixed(0)} then ${((settled - base) / counted).toFixed(0)} bytes each; CPU with them held ${((cpu / SETTLE_S) * 100).toFixed(2)} % of a core; load ${load()}`,
    );
    // the supervisor holds nothing per connection, but its own GCs move the sum by +-10 MB
    console.log(
      `conns ${n}: data plane alone, after a full GC each: ${mb(dpBase)} -> ${mb(dpSettled)} MB = ${((dpSettled - dpBase) / counted).toFixed(0)} bytes per connection (${((dpHeld - dpBase) / counted).toFixed(0)} before that GC: ${mb(dpHeld)} MB)`,
    );
    console.log(`conns ${n}: status with them held: ${tableText(await counters())}; a new relayed connection: ${await curlNginx()}`);
    if (BEYOND > 0) await beyond(n, holders);
    const tunDrops0 = await tunDrops();
    const aborts0 = await clientAborts();
    const closeCpu0 = cpuSeconds([dp]);
    const packetsIn0 = (await counters()).packetsIn;
    const closed = await release();
    const t2 = Date.now();
    let c = await counters();
    while (Date.now() - t2 < 60_000 && (c.connections > 0 || c.tcp_state_established > 0)) {
      await new Promise((r) => setTimeout(r, 1000));
      c = await counters();
    }
    const after = await curlNginx();
    console.log(
      `conns ${n}: all closed by their holders (${closed.gracefully} with FINs both ways; ${closed.lostWhileHeld} had been reset or ended by the gateway while held); ${((Date.now() - t2) / 1000).toFixed(0)} s later: ${tableText(c)}; the TUN's queue toward the gateway dropped ${(await tunDrops()) - tunDrops0} packets meanwhile, the data plane used ${(cpuSeconds([dp]) - closeCpu0).toFixed(1)} s of CPU and read ${c.packetsIn - packetsIn0} packets; client namespace: ${await clientCloseState(aborts0)}; a new relayed connection: ${after}; load ${load()}`,
    );
  };
  /** The status's counters, with its drop counters as drop_REASON. */
  const counters = async () => {
    const st = JSON.parse((await nsExec(topo.client, [...argv, 'status', '--state-dir', stateDir, '--json'])).stdout).status;
    const drops = Object.entries((st.drops ?? {}) as Record<string, number>).map(([k, v]) => [`drop_${k}`, v]);
    return { ...st.counters, ...Object.fromEntries(drops) } as Record<string, number>;
  };
  const tableText = (c: Record<string, number>) =>
    `connections ${c.connections}, established ${c.tcp_state_established ?? 0}, other states ${Object.entries(c)
      .filter(([k, v]) => k.startsWith('tcp_state_') && k !== 'tcp_state_established' && v > 0)
      .map(([k, v]) => `${k.slice(10)} ${v}`)
      .join(' ')}, SYNs refused ${c.synRefused} (over the limit ${c.drop_syn_over_limit ?? 0}), SYN cookies sent ${c.synCookiesSent} accepted ${c.synCookiesAccepted}, drops ${
      Object.entries(c)
        .filter(([k, v]) => k.startsWith('drop_') && v > 0)
        .map(([k, v]) => `${k.slice(5)} ${v}`)
        .join(' ') || 'none'
    }`;
  /** Packets the kernel dropped on the way into the TUN (its queue toward the reader full): tsl0's tx dropped. */
  const tunDrops = async () => {
    const r = await nsExec(topo.client, ['ip', '-s', '-j', 'link', 'show', 'dev', 'tsl0'], { allowFail: true });
    return Number(JSON.parse(r.stdout || '[{}]')[0]?.stats64?.tx?.dropped ?? NaN);
  };
  /** The client kernel's counts of connections it gave up on (nstat, this namespace's own; -s: no history file written). */
  const clientAborts = async () => {
    const r = await nsExec(topo.client, ['nstat', '-s', '-az', 'TcpExtTCPAbortOnTimeout', 'TcpExtTCPAbortOnMemory', 'TcpExtTCPAbortOnClose'], { allowFail: true });
    return Object.fromEntries([...r.stdout.matchAll(/^TcpExt(\w+)\s+(\d+)/gm)].map((m) => [m[1], Number(m[2])])) as Record<string, number>;
  };
  /** What the client side still has of the closed connections, and what its kernel gave up on since `before`. */
  const clientCloseState = async (before: Record<string, number>) => {
    const now = await clientAborts();
    const states = await nsExec(topo.client, ['ss', '-Htan', 'state', 'fin-wait-1'], { allowFail: true });
    const gaveUp = Object.entries(now)
      .map(([k, v]) => `${k} ${v - (before[k] ?? 0)}`)
      .join(', ');
    return `${states.stdout.split('\n').filter(Boolean).length} sockets still in FIN-WAIT-1; gave up: ${gaveUp}`;
  };
  const curlNginx = async () => {
    const r = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', `http://${NGINX_IP}/hello`], { allowFail: true, timeoutMs: 20_000 });
    return r.code === 0 ? `answered (${JSON.stringify(r.stdout.trim())})` : `failed: exit ${r.code} ${r.stderr.trim()}`;
  };
  /** --beyond K: K more connections tried with n held; then one holder's share closed, and K tried again. */
  const beyond = async (n: number, holders: { kill(s: NodeJS.Signals): boolean; exited(): Promise<unknown> }[]) => {
    const extra = TARGET === 'dns' ? await holdConns(host, topo.client, DNS_IP, [53], BEYOND, locals) : await holdConns(host, topo.client, PEER_IP, ports, BEYOND);
    await new Promise((r) => setTimeout(r, 1100));
    console.log(
      `beyond ${n}: ${BEYOND} more tried: ${extra.held} held, ${extra.failed} failed (${JSON.stringify(extra.line)}); status: ${tableText(await counters())}; a new relayed connection: ${await curlNginx()}; load ${load()}`,
    );
    await extra.release();
    if (holders.length < 2) return console.log(`beyond ${n}: one holder process only: not closing a share`);
    holders[0].kill('SIGTERM');
    await holders[0].exited();
    await new Promise((r) => setTimeout(r, 3000)); // their FINs answered, and the next status publish
    console.log(`beyond ${n}: one holder of ${holders.length} closed its connections; status: ${tableText(await counters())}; a new relayed connection: ${await curlNginx()}`);
    const again = TARGET === 'dns' ? await holdConns(host, topo.client, DNS_IP, [53], BEYOND, locals) : await holdConns(host, topo.client, PEER_IP, ports, BEYOND);
    await new Promise((r) => setTimeout(r, 1100));
    console.log(`beyond ${n}: ${BEYOND} tried again: ${again.held} held, ${again.failed} failed; status: ${tableText(await counters())}; load ${load()}`);
    await again.release();
  };

  const dnsTarget = TARGET === 'dns' && only.includes('conns');
  const ports = only.includes('conns') && !dnsTarget ? await prepareForConns(host, topo, Math.max(...CONNS)) : [PEER_PORT];
  const locals = dnsTarget ? await prepareForDnsConns(topo.client) : undefined;
  if (only.includes('conns') && !dnsTarget && Math.max(...CONNS) >= fdLimit() - 100) {
    console.log(
      `note: the fd limit here is ${fdLimit()} (hard; raising it takes CAP_SYS_RESOURCE): the data plane holds one upstream socket per connection, so it stops near that`,
    );
  }
  if (only.includes('conns') && !values['no-baseline'] && !dnsTarget) {
    // the kernel path's baseline: a plain Node proxy holding the same connections (before the gateway routes the client namespace)
    for (const n of CONNS) {
      const proxy = await startPlainProxy(host, topo, ports, ['--expose-gc', `--import=${gcPreload}`]);
      await new Promise((r) => setTimeout(r, 1000));
      await collect(proxy.pid!);
      const base = rssBytes([proxy.pid!]);
      const { release, held } = await holdConns(host, topo.client, PLAIN_PROXY_IP, [PLAIN_PROXY_PORT], n);
      await new Promise((r) => setTimeout(r, 2000));
      const early = rssBytes([proxy.pid!]);
      await new Promise((r) => setTimeout(r, SETTLE_S * 1000));
      await collect(proxy.pid!);
      const settled = rssBytes([proxy.pid!]);
      console.log(
        `plain node proxy (kernel path), ${held} held: RSS ${mb(base)} -> ${mb(early)} -> ${mb(settled)} MB (after a full GC) = ${((early - base) / held).toFixed(0)} then ${((settled - base) / held).toFixed(0)} bytes each`,
      );
      await release();
      proxy.kill('SIGTERM');
      await proxy.exited();
    }
  }

  const first = await start();
  let gw = first.gw;
  let pids = first.pids;

  if (only.includes('idle')) {
    await new Promise((r) => setTimeout(r, 3000)); // start-up settles
    const c0 = cpuSeconds(pids);
    const each0 = pids.map((p) => cpuSeconds([p]));
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const cpu = cpuSeconds(pids) - c0;
    console.log(`idle CPU by process (supervisor, data plane): ${pids.map((p, i) => ((cpuSeconds([p]) - each0[i]) * 1000).toFixed(0)).join(' + ')} ms`);
    console.log(
      `idle gateway: ${(cpu * 1000).toFixed(0)} ms CPU in ${IDLE_S} s = ${((cpu / IDLE_S) * 100).toFixed(2)} % of a core; RSS ${(rssBytes(pids) / 1048576).toFixed(1)} MB (${pids.length} processes: ${pids.map((p) => (rssBytes([p]) / 1048576).toFixed(1)).join(' + ')})`,
    );
    console.log(`idle gateway memory (supervisor + data plane, MB): ${memText(pids)}`);
    for (const p of pids) await collect(p);
    console.log(`idle gateway memory after a full GC in each process (MB): ${memText(pids)}`);
    await snapshot(pids[pids.length - 1]);
    console.log('data plane heap (status, MB):', Object.fromEntries(Object.entries(await mem()).map(([k, v]) => [k, +(v / 1048576).toFixed(1)])));
  }

  if (only.includes('conns')) {
    for (const [i, n] of CONNS.entries()) {
      if (i > 0) {
        // a fresh gateway per size: the last size's heap growth is not this one's base
        gw.kill('SIGTERM');
        await gw.exited();
        ({ gw, pids } = await start());
      }
      await heldConns(n, pids);
    }
  }

  if (only.includes('latency')) {
    // The kernel path needs the gateway gone: interleave by restarting it.
    for (let i = 0; i < ROUNDS; i++) {
      gwLat.push(await wrk(topo.client, 1, false));
      gw.kill('SIGTERM');
      await gw.exited();
      kernelLat.push(await wrk(topo.client, 1, false));
      ({ gw } = await start());
    }
    const row = (n: string, xs: typeof gwLat) =>
      console.log(
        `latency, 1 keep-alive conn, ${n}: ` +
          xs.map((r) => `p50 ${r.p50.toFixed(3)} p90 ${r.p90.toFixed(3)} p99 ${r.p99.toFixed(3)} max ${r.max.toFixed(2)} ms (${r.rps.toFixed(0)} req/s)`).join(' | '),
      );
    row('kernel', kernelLat);
    row('gateway', gwLat);
  }

  if (only.includes('close')) {
    const before = await timeWait(topo.client);
    const r = await wrk(topo.client, 16, true);
    console.log(
      `close, gateway: ${r.rps.toFixed(0)} conn/s, ${r.requests} connections; TIME-WAIT client ns before`,
      before,
      'after',
      await timeWait(topo.client),
      'servers ns',
      await timeWait(topo.servers),
    );
  }
  gw.kill('SIGTERM');
  await gw.exited();
  console.log(`load average after: ${load()}`);
}

async function iperf(ns: string, reverse: boolean): Promise<number> {
  const r = await nsExec(ns, ['iperf3', '-c', IPERF_IP, '-t', String(WRK_S), '-J', ...(reverse ? ['-R'] : [])], { timeoutMs: (WRK_S + 30) * 1000, allowFail: true });
  const j = JSON.parse(r.stdout || '{}');
  const bps = j.end?.sum_received?.bits_per_second;
  if (bps === undefined) console.log(`  iperf3 failed (counted as no figure): ${j.error ?? r.stderr.slice(-200)}`);
  return bps === undefined ? NaN : bps / 1e9;
}

async function offloads(ns: string, _iperf: unknown): Promise<void> {
  const modesOf = (text: string) => text.split(',').map((m) => m === 'on');
  const modes = modesOf(values['offload-modes'] ?? 'off,on');
  const builds = [
    { label: values.compare ? 'this' : '', root: values.root ?? ROOT, modes },
    ...(values.compare ? [{ label: 'base', root: values.compare, modes: modesOf(values['compare-modes'] ?? values['offload-modes'] ?? 'off,on') }] : []),
  ];
  const mtus = (values.mtus ?? '1500,65520').split(',').map(Number);
  const runs = new Map<string, { up: number[]; down: number[] }>();
  const note = (key: string, up: number, down: number) => {
    const r = runs.get(key) ?? { up: [], down: [] };
    if (!Number.isNaN(up)) r.up.push(up);
    if (!Number.isNaN(down)) r.down.push(down);
    runs.set(key, r);
  };
  const keyOf = (label: string, mtu: number, off: boolean) => `${label ? `${label}, ` : ''}MTU ${mtu}, offloads ${off ? 'on' : 'off'}`;
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round}: load average ${load()}`);
    const kUp = await iperf(ns, false);
    const kDown = await iperf(ns, true);
    note('kernel path', kUp, kDown);
    console.log(`  kernel path: up ${kUp.toFixed(2)} down ${kDown.toFixed(2)} Gbit/s (load ${load()})`);
    for (const b of builds) {
      const mainJs = join(b.root, 'dist/src/cli/main.js');
      // offloads are on by default since --no-tun-offload exists; a build from before needs --tun-offload for them
      const offByDefault = !readFileSync(join(b.root, 'dist/src/cli/args.js'), 'utf8').includes('no-tun-offload');
      const offloadFlags = (on: boolean) => (offByDefault ? (on ? ['--tun-offload'] : []) : on ? [] : ['--no-tun-offload']);
      for (const mtu of mtus) {
        for (const off of b.modes) {
          const stateDir = mkdtempSync(join(tmpdir(), 'tsE-lean-'));
          host.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
          const gw = spawnInNs(host, ns, [
            process.execPath,
            mainJs,
            'up',
            '--mode',
            'route-all',
            '--state-dir',
            stateDir,
            '--tun-name',
            'tsl1',
            '--log-level',
            'warn',
            '--mtu',
            String(mtu),
            ...offloadFlags(off),
          ]);
          await waitForGateway(ns, stateDir, gw, 60_000);
          const before = load();
          const up = await iperf(ns, false);
          const down = await iperf(ns, true);
          await new Promise((r) => setTimeout(r, 1100));
          const c = JSON.parse((await nsExec(ns, [process.execPath, mainJs, 'status', '--state-dir', stateDir, '--json'])).stdout).status.counters;
          const key = keyOf(b.label, mtu, off);
          note(key, up, down);
          console.log(
            `  ${key}: up ${up.toFixed(2)} down ${down.toFixed(2)} Gbit/s; packets in ${c.packetsIn}, out ${c.packetsOut}, TSO segments out ${c.segmentsOffloaded ?? '-'} (load ${before} -> ${load()})`,
          );
          gw.kill('SIGTERM');
          await gw.exited();
        }
      }
    }
  }
  console.log(`medians of ${ROUNDS} rounds, Gbit/s up / down:`);
  for (const [key, r] of runs)
    console.log(
      `  ${key}: ${median(r.up).toFixed(2)} / ${median(r.down).toFixed(2)}  (up ${r.up.map((x) => x.toFixed(2)).join(' ')}; down ${r.down.map((x) => x.toFixed(2)).join(' ')})`,
    );
  for (const b of builds) {
    for (const off of b.modes) {
      const lo = runs.get(keyOf(b.label, 1500, off));
      const hi = runs.get(keyOf(b.label, 65520, off));
      if (!lo || !hi) continue;
      const ratio = (a: number[], z: number[]) => (median(a) / median(z)).toFixed(2);
      console.log(`  ${keyOf(b.label, 1500, off)} against 65520: up ${ratio(lo.up, hi.up)}x, down ${ratio(lo.down, hi.down)}x`);
    }
  }
  console.log(`load average after: ${load()}`);
}

runBench(main, cleanup);
