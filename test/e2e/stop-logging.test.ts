// Connections still open when the gateway stops are logged like any other:
// one line each, TCP and UDP alike, saying how they ended (end
// "gateway-stop"), on SIGTERM and on SIGINT, in route-all, per-host,
// redirect, tproxy and `tunsteer run`. 50 TCP connections and 3 UDP flows
// (redirect takes TCP only) are opened through the gateway, each proven by an
// echo, and held open while it stops.
//
//   lan ns 198.51.100.2 ── client ns (the gateway; a router for the lan) ── servers ns: TCP echo :7000, UDP echo :7001
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { nsExec, spawnInNs, spawnNodeInNs, type NsChild } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, PEER_IP, ROOT, clientResolvConf, makeTopology, routerWithLan, startDnsPeer, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(600_000);
const TCP_PORT = 7000;
const UDP_PORT = 7001;
const N_TCP = 50;
const N_UDP = 3;
const HOLD = join(ROOT, 'test/helpers/hold-peer.ts');

const topo = await makeTopology(t);
const { lan } = await routerWithLan(t, topo);
// per-host names resolve to NGINX_IP (dns-peer.ts), the rest dial PEER_IP; UDP servers bound to each
// address, so that replies come from the address the client sent to (its socket is connected)
const servers = [
  spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/tcp-peer.ts'), ['server', '0.0.0.0', String(TCP_PORT)]),
  ...[PEER_IP, NGINX_IP].map((ip) => spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/udp-peer.ts'), ['server', ip, String(UDP_PORT)])),
];
await Promise.all(servers.map((p) => p.waitForLine((l) => l.includes('listening'))));
await startDnsPeer(t, topo);
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);

interface Ready {
  ready: true;
  tcp: number[];
  udp: number[];
}

interface ConnLine {
  msg: string;
  proto: string;
  src: string;
  dst: string;
  end: string;
  up: number;
  down: number;
}

async function holdOpen(holder: NsChild): Promise<Ready> {
  const line = await holder.waitForLine((l) => l.startsWith('{'), 90_000);
  const r = JSON.parse(line);
  if (!r.ready) throw new Error(`the connections did not open: ${line}`);
  return r as Ready;
}

/** Every held connection has exactly one line, and it says the stop ended it. */
/** ends: how a held connection's line may say it ended (the stop's own word, unless the program's exit came first, as with run). */
function checkLines(t: Test, lines: readonly string[], held: Ready, ends: readonly string[] = ['gateway-stop']): void {
  const conn: ConnLine[] = lines
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((r) => r.msg === 'conn');
  for (const [proto, ports, dstPort] of [
    ['tcp', held.tcp, TCP_PORT],
    ['udp', held.udp, UDP_PORT],
  ] as const) {
    const of = (port: number) => conn.filter((c) => (c.proto === 'udp') === (proto === 'udp') && c.src.endsWith(`:${port}`) && c.dst.endsWith(`:${dstPort}`));
    const without = ports.filter((p) => of(p).length !== 1);
    t.same(without, [], `each of the ${ports.length} ${proto} connections has one line (${conn.length} conn lines in all)`);
    const seen = [...new Set(ports.flatMap((p) => of(p).map((c) => c.end)))];
    if (ports.length)
      t.same(
        seen.filter((e) => !ends.includes(e)),
        [],
        `and it says what ended it: ${seen.join(', ')} (${proto})`,
      );
    // like any other line: the bytes each way so far (the echo's)
    const short = ports.flatMap((p) => of(p)).filter((c) => !(c.up >= PROBE_UP[proto] && c.down >= PROBE_DOWN[proto]));
    t.same(short, [], `with the bytes moved so far (${proto})`);
  }
}

/** The stop in two lines: "restoring" as it begins, then "restored, N connections closed", N being the lines that say gateway-stop. */
function checkStopLines(t: Test, lines: readonly string[], held: Ready, allHeldOpen = true): void {
  const recs = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; end?: string; closed?: number });
  const at = (m: (r: { msg: string }) => boolean) => recs.findIndex(m);
  const restoring = at((r) => r.msg === 'restoring');
  const restored = at((r) => /^restored, \d+ connections? closed$/.test(r.msg));
  t.ok(restoring >= 0, 'a "restoring" line');
  t.ok(restored > restoring, 'then a "restored, N connections closed" line');
  const stopped = recs.filter((r) => r.msg === 'conn' && r.end === 'gateway-stop').length;
  t.equal(recs[restored]?.closed, stopped, `N is the connections the stop closed (${stopped})`);
  if (allHeldOpen) t.ok(stopped >= held.tcp.length + held.udp.length, 'at least the ones held open');
  t.match(recs[restored]?.msg, `restored, ${stopped} connection`);
}

/** What hold-peer.ts moves on each connection before it holds it: at least this much each way. */
const PROBE_UP = { tcp: 'ECHO\nhello\n'.length, udp: 'hold'.length };
const PROBE_DOWN = { tcp: 'hello\n'.length, udp: 'hold'.length };

const exitCode = { SIGTERM: 0, SIGINT: 0 } as const;

const cases: { name: string; gatewayNs: string; clientNs: string; args: string[]; host: string; udp: number; signal: 'SIGTERM' | 'SIGINT' }[] = [
  { name: 'route-all, SIGTERM', gatewayNs: topo.client, clientNs: topo.client, args: ['--mode', 'route-all', '--tun-name', 'tsS0'], host: PEER_IP, udp: N_UDP, signal: 'SIGTERM' },
  { name: 'route-all, SIGINT', gatewayNs: topo.client, clientNs: topo.client, args: ['--mode', 'route-all', '--tun-name', 'tsS1'], host: PEER_IP, udp: N_UDP, signal: 'SIGINT' },
  {
    name: 'per-host, SIGTERM',
    gatewayNs: topo.client,
    clientNs: topo.client,
    args: ['--mode', 'per-host', '--host', 'api.example.com', '--tun-name', 'tsS2'],
    host: 'api.example.com',
    udp: N_UDP,
    signal: 'SIGTERM',
  },
  { name: 'redirect, SIGTERM', gatewayNs: topo.client, clientNs: lan, args: ['--mode', 'redirect'], host: PEER_IP, udp: 0, signal: 'SIGTERM' },
  { name: 'tproxy, SIGTERM', gatewayNs: topo.client, clientNs: lan, args: ['--mode', 'tproxy'], host: PEER_IP, udp: N_UDP, signal: 'SIGTERM' },
];

for (const c of cases) {
  t.test(`${c.name}: every open connection gets its line`, async (t) => {
    const stateDir = join(topo.tmp, `state-${c.name.replace(/\W+/g, '-')}`);
    const gw = startGateway(t, c.gatewayNs, [...c.args, '--state-dir', stateDir]);
    let holder: NsChild | null = null;
    try {
      await waitForGateway(c.gatewayNs, stateDir, gw);
      holder = spawnNodeInNs(t, c.clientNs, HOLD, ['hold', c.host, String(TCP_PORT), String(UDP_PORT), String(N_TCP), String(c.udp)], { cwd: ROOT });
      const held = await holdOpen(holder);
      t.equal(held.tcp.length + held.udp.length, N_TCP + c.udp, 'all open');
      gw.kill(c.signal);
      t.equal((await gw.exited()).code, exitCode[c.signal], `exit code after ${c.signal}`);
      checkLines(t, gw.stdoutLines(), held);
      checkStopLines(t, gw.stdoutLines(), held);
    } finally {
      holder?.kill('SIGKILL');
      await holder?.exited();
      // a gateway that failed before its stop leaves its routing for the next case: undo it
      if (gw.exitCode === null) {
        gw.kill('SIGKILL');
        await gw.exited();
        await nsExec(c.gatewayNs, tunsteerArgv(['down', '--state-dir', stateDir]), { allowFail: true });
      }
    }
  });
}

t.test('tunsteer run, SIGTERM: every open connection of its program gets its line', async (t) => {
  const run = spawnInNs(
    t,
    topo.client,
    tunsteerArgv(['run', '--', process.execPath, '--import', 'tsx', HOLD, 'hold', PEER_IP, String(TCP_PORT), String(UDP_PORT), String(N_TCP), String(N_UDP)]),
    { cwd: ROOT },
  );
  const held = await holdOpen(run);
  run.kill('SIGTERM');
  t.equal((await run.exited()).code, 143, "the program's status: run passed the SIGTERM on, and the program died of it");
  // run keeps stdout for its program: the gateway logs to stderr. run waits for its program, whose exit
  // closes its TCP connections (closed, or reset with unread data) before the gateway stops; UDP has no close
  checkLines(t, run.stderrText().split('\n'), held, ['closed', 'client-reset', 'gateway-stop']);
  checkStopLines(t, run.stderrText().split('\n'), held, false);
  t.equal((await nsExec(topo.client, ['ip', '-o', 'link', 'show', 'type', 'tun'])).stdout, '', 'no TUN left');
  const left = ['/run', tmpdir()].flatMap((d) => readdirSync(d).filter((e) => e === `tunsteer-run-${run.pid}` || e.startsWith(`tunsteer-run-${run.pid}-`)));
  t.same(left, [], 'no state dir or resolv.conf dir left by the stopped run');
});
