// The standard end-to-end topology: a client namespace whose uplink is a veth
// to a servers namespace holding test hosts on documentation addresses.
//
//   client ns (gateway runs here)  192.0.2.1/24 ──veth── 192.0.2.2/24  servers ns
//   default via 192.0.2.2                                   203.0.113.10 nginx :80
//                                                           203.0.113.11 iperf3 :5201
//                                                           203.0.113.12 tcp-peer :7000
import type { SpawnOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bigIntToIpv6, ipv4ToInt } from '../../src/cidr.js';
import { defaultWorkers } from '../../src/config/settings.js';
import { createNetns, nsExec, spawnInNs, spawnNodeInNs, veth, type NsChild, type TeardownHost } from './netns.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const NGINX_IP = '203.0.113.10';
export const IPERF_IP = '203.0.113.11';
export const PEER_IP = '203.0.113.12';
export const PEER_PORT = 7000;

export interface Topology {
  client: string;
  servers: string;
  /** Directory nginx serves from (write files here). */
  www: string;
  tmp: string;
}

export async function makeTopology(t: TeardownHost, opts: { mtu?: number } = {}): Promise<Topology> {
  const client = await createNetns(t, 'tsE-');
  const servers = await createNetns(t, 'tsE-');
  await veth(client, servers, { aAddr: '192.0.2.1/24', bAddr: '192.0.2.2/24', mtu: opts.mtu });
  await nsExec(client, ['ip', 'route', 'add', 'default', 'via', '192.0.2.2']);
  for (const ip of [NGINX_IP, IPERF_IP, PEER_IP]) await nsExec(servers, ['ip', 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
  const tmp = mkdtempSync(join(tmpdir(), 'tsE-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const www = join(tmp, 'www');
  await nsExec(servers, ['mkdir', '-p', www]);
  return { client, servers, www, tmp };
}

/**
 * A LAN namespace behind the client namespace, which becomes a router (the redirect and tproxy
 * tests): the LAN at 198.51.100.2 and 2001:db8:1::2, the router's uplink 2001:db8:2::1 towards the
 * servers namespace (2001:db8:2::2), which also holds the server addresses 203.0.113.30 and
 * 2001:db8:3::10 on its loopback. Forwarding on in the router; no route back from the servers to
 * the LAN, so only a gateway on the router answers for it.
 */
export async function routerWithLan(t: TeardownHost, topo: Topology): Promise<{ router: string; lan: string }> {
  const router = topo.client;
  const lan = await createNetns(t, 'tsE-');
  await veth(lan, router, { aAddr: '198.51.100.2/24', bAddr: '198.51.100.1/24' });
  const sh = (ns: string, cmd: string) => nsExec(ns, ['sh', '-c', cmd]);
  await sh(lan, 'ip route add default via 198.51.100.1');
  const vethOf = "ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1";
  const lanIf = (await sh(lan, vethOf)).stdout.trim();
  const routerLanIf = (await sh(router, `${vethOf} | grep -v "$(ip -o route show default | awk '{print $5}')"`)).stdout.trim();
  const routerUpIf = (await sh(router, "ip -o route show default | awk '{print $5}'")).stdout.trim();
  const serversIf = (await sh(topo.servers, vethOf)).stdout.trim();
  await sh(lan, `ip -6 addr add 2001:db8:1::2/64 dev ${lanIf} nodad && ip -6 route add default via 2001:db8:1::1`);
  await sh(
    router,
    `ip -6 addr add 2001:db8:1::1/64 dev ${routerLanIf} nodad && ip -6 addr add 2001:db8:2::1/64 dev ${routerUpIf} nodad && ip -6 route add default via 2001:db8:2::2`,
  );
  await sh(topo.servers, `ip -6 addr add 2001:db8:2::2/64 dev ${serversIf} nodad && ip -6 addr add 2001:db8:3::10/128 dev lo && ip addr add 203.0.113.30/32 dev lo`);
  await sh(router, 'sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1');
  return { router, lan };
}

/** IPv6 test hosts (addIpv6): the client's veth end, the servers' end, and the servers' own addresses. */
export const CLIENT_IP6 = '2001:db8:1::1';
export const SERVERS_LINK_IP6 = '2001:db8:1::2';
export const NGINX_IP6 = '2001:db8:10::10';
export const IPERF_IP6 = '2001:db8:10::11';

/**
 * Adds IPv6 to a topology: 2001:db8:1::/64 on the veth (nodad, so usable at
 * once), the client's IPv6 default route via the servers' end, and the
 * servers' hosts on their lo. Returns the veth names.
 */
export async function addIpv6(topo: Topology): Promise<{ clientIf: string; serversIf: string }> {
  const dev = async (ns: string) => {
    const r = await nsExec(ns, ['ip', '-o', 'link', 'show', 'type', 'veth']);
    return r.stdout.split(':')[1].trim().split('@')[0];
  };
  const [clientIf, serversIf] = await Promise.all([dev(topo.client), dev(topo.servers)]);
  await nsExec(topo.client, ['ip', '-6', 'addr', 'add', `${CLIENT_IP6}/64`, 'dev', clientIf, 'nodad']);
  await nsExec(topo.servers, ['ip', '-6', 'addr', 'add', `${SERVERS_LINK_IP6}/64`, 'dev', serversIf, 'nodad']);
  await nsExec(topo.client, ['ip', '-6', 'route', 'add', 'default', 'via', SERVERS_LINK_IP6, 'dev', clientIf]);
  for (const ip of [NGINX_IP6, IPERF_IP6]) await nsExec(topo.servers, ['ip', '-6', 'addr', 'add', `${ip}/128`, 'dev', 'lo', 'nodad']);
  return { clientIf, serversIf };
}

/**
 * The IPv6 twin of a fake IPv4 address of the default pools (same offset in
 * fc00::/18 as in 198.18.0.0/15): with IPv6 on, a mapped name has both, and a
 * dual-stack client (curl) may use either.
 */
export function fakeTwin6(ip4: string): string {
  const off = BigInt(ipv4ToInt(ip4) - ipv4ToInt('198.18.0.0'));
  return bigIntToIpv6((0xfc00n << 112n) + off);
}

/** `dst` of a connection log line to a mapped name: its IPv4 fake or that fake's IPv6 twin. */
export function fakeDsts(ip4: string, port: number): string[] {
  return [`${ip4}:${port}`, `[${fakeTwin6(ip4)}]:${port}`];
}

/** An nginx.conf for a test: one worker in the foreground as root, its files in `dir`, no access log, `body` in the http block. */
export function nginxConfig(dir: string, body: string, workerConnections = 1024): string {
  return `daemon off;
master_process off;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections ${workerConnections}; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${body}
}
`;
}

export async function startNginx(t: TeardownHost, topo: Topology, opts: { ipv6?: boolean } = {}): Promise<NsChild> {
  const conf = join(topo.tmp, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
user root;
pid ${topo.tmp}/nginx.pid;
error_log ${topo.tmp}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path ${topo.tmp}/body;
  proxy_temp_path ${topo.tmp}/proxy;
  fastcgi_temp_path ${topo.tmp}/fcgi;
  uwsgi_temp_path ${topo.tmp}/uwsgi;
  scgi_temp_path ${topo.tmp}/scgi;
  keepalive_requests 100000;
  server {
    listen ${NGINX_IP}:80 reuseport backlog=4096;${opts.ipv6 ? `\n    listen [${NGINX_IP6}]:80 reuseport backlog=4096;` : ''}
    root ${topo.www};
    location = /hello { return 200 "hello from nginx\\n"; }
  }
}
`,
  );
  const nginx = spawnInNs(t, topo.servers, ['nginx', '-c', conf, '-p', topo.tmp]);
  await waitForPort(topo.servers, NGINX_IP, 80);
  return nginx;
}

export async function startIperf(t: TeardownHost, topo: Topology): Promise<NsChild> {
  const p = spawnInNs(t, topo.servers, ['iperf3', '-s', '-B', IPERF_IP]);
  await waitForPort(topo.servers, IPERF_IP, 5201);
  return p;
}

export async function startPeer(t: TeardownHost, topo: Topology): Promise<NsChild> {
  const p = spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/tcp-peer.ts'), ['server', PEER_IP, String(PEER_PORT)]);
  await p.waitForLine((l) => l.includes('listening'));
  return p;
}

export async function waitForPort(ns: string, ip: string, port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const r = await nsExec(ns, ['ss', '-Hltn', `src ${ip}:${port}`], { allowFail: true });
    if (r.stdout.trim()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${ip}:${port} in ${ns}`);
}

/** Runs the tunsteer CLI from source inside a namespace. */
export function tunsteerArgv(args: string[]): string[] {
  return [process.execPath, '--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args];
}

/** The workers a gateway started by startGateway without --workers runs (route-all or per-host, native backend). */
export function expectedWorkers(): number {
  const forced = process.env.TUNSTEER_TEST_WORKERS;
  return forced ? Number(forced) : defaultWorkers('route-all', 'native');
}

/**
 * `tunsteer up ARGS` in the namespace. TUNSTEER_TEST_WORKERS=N (a whole-suite
 * run with N stack workers; 1: the single thread, as before the default became
 * the cores) adds --workers N where the test gave none; the product itself
 * never reads it. TUNSTEER_TEST_OFFLOAD=0 adds --no-tun-offload the same way (a
 * whole-suite run on a plain TUN: offloads are on by default).
 */
export function startGateway(t: TeardownHost, ns: string, args: string[], opts: SpawnOptions = {}): NsChild {
  const forced = process.env.TUNSTEER_TEST_WORKERS;
  const workers = forced && !args.includes('--workers') ? ['--workers', forced] : [];
  const offload = process.env.TUNSTEER_TEST_OFFLOAD === '0' && !args.includes('--tun-offload') && !args.includes('--no-tun-offload') ? ['--no-tun-offload'] : [];
  return spawnInNs(t, ns, tunsteerArgv(['up', ...args, ...workers, ...offload]), opts);
}

/**
 * Polls `tunsteer status` until it exits 0 (the routes are in place). The limit
 * is generous on purpose: starting `up` spawns two Node processes that load the
 * sources through tsx, and on a 2-core machine under a load of 20+ (other
 * suites running beside this one) that alone took more than 20 s; the time is
 * not what is tested here.
 */
export async function waitForGateway(ns: string, stateDir: string, gw: NsChild, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    if (gw.exitCode !== null) throw new Error(`gateway exited ${gw.exitCode}: ${gw.stderrText()}`);
    const r = await nsExec(ns, tunsteerArgv(['status', '--state-dir', stateDir]), { allowFail: true });
    if (r.code === 0) return;
    last = r.stdout + r.stderr;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`gateway not up within ${timeoutMs} ms: ${gw.stderrText()}; last status: ${last}`);
}

/**
 * A route-all gateway in the client namespace at this MTU, offloads on or off,
 * stopped when the test ends; returns its state directory. faults: its
 * TUNSTEER_TEST_FAULTS (src/tun/faulty-tun.ts); extra: more flags.
 */
export async function routeAllGateway(
  t: TeardownHost,
  topo: Topology,
  name: string,
  mtu: number,
  offload: boolean,
  opts: { faults?: string; extra?: string[] } = {},
): Promise<string> {
  const stateDir = join(topo.tmp, `state-${name}`);
  const args = ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', name, '--mtu', String(mtu), ...(offload ? [] : ['--no-tun-offload']), ...(opts.extra ?? [])];
  const gw = startGateway(t, topo.client, args, { env: { ...process.env, TUNSTEER_TEST_FAULTS: opts.faults ?? '' } });
  t.teardown(async () => {
    gw.kill('SIGTERM');
    await gw.exited();
  });
  await waitForGateway(topo.client, stateDir, gw, 90_000);
  return stateDir;
}

/** The gateway's live status (counters, drops) after its next publish (once a second). */
export async function liveStatus(ns: string, stateDir: string) {
  await new Promise((res) => setTimeout(res, 1200));
  return JSON.parse((await nsExec(ns, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status;
}

export const DNS_IP = '203.0.113.53';

/** Starts the test DNS server (test/helpers/dns-peer.ts) on DNS_IP in the servers namespace; `zone` adds names. */
export async function startDnsPeer(t: TeardownHost, topo: Topology, zone: Record<string, string[]> = {}): Promise<NsChild> {
  await nsExec(topo.servers, ['ip', 'addr', 'add', `${DNS_IP}/32`, 'dev', 'lo']);
  const extra = Object.entries(zone).map(([name, ips]) => `${name}=${ips.join(',')}`);
  const p = spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/dns-peer.ts'), [DNS_IP, ...extra]);
  await p.waitForLine((l) => l.includes('listening'));
  return p;
}

/**
 * Gives the client namespace its own resolv.conf (/etc/netns/NS/resolv.conf,
 * bind-mounted over /etc/resolv.conf by `ip netns exec`) and checks that the
 * namespace sees it, so nothing a test does can reach this machine's resolver.
 * Returns a reader of the file's current text.
 */
export async function clientResolvConf(t: TeardownHost, ns: string, text: string): Promise<() => string> {
  const dir = `/etc/netns/${ns}`;
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'resolv.conf'), text);
  const seen = await nsExec(ns, ['cat', '/etc/resolv.conf']);
  if (seen.stdout !== text) throw new Error(`${ns} does not see its own resolv.conf: refusing to run`);
  return () => readFileSync(join(dir, 'resolv.conf'), 'utf8');
}
