// A DNS lookup that fails is said, one line each: the name, the type asked,
// the resolvers and what they did (issue 19 item 5). Under `up` a forwarded
// query that no resolver answers logged nothing (the client saw SERVFAIL and
// `status` a counter); a mapped name whose real address could not be found
// showed c-ares's message for the last type tried, which read as swapped
// (queryA on an IPv6 connection). The startup line names the resolvers.
import t from 'tap';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { clientResolvConf, makeTopology, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(300_000);
const topo = await makeTopology(t);
// a resolver address that exists but where nothing listens: each query is refused (ICMP port unreachable)
const DEAD_DNS = '203.0.113.54';
await nsExec(topo.servers, ['ip', 'addr', 'add', `${DEAD_DNS}/32`, 'dev', 'lo']);
await clientResolvConf(t, topo.client, `nameserver ${DEAD_DNS}\n`);

type Line = { msg: string; name?: string; type?: string; resolvers?: string[]; reason?: string; host?: string; error?: string; uplink?: unknown; dns?: string };
const parse = (lines: readonly string[]): Line[] => lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

t.test('up, per-host: the startup line names the resolvers; each failed lookup gets its line', async (t) => {
  const stateDir = join(topo.tmp, 'state');
  const gw = startGateway(t, topo.client, ['--mode', 'per-host', '--host', 'api.example.com', '--state-dir', stateDir, '--tun-name', 'tsD0']);
  await waitForGateway(topo.client, stateDir, gw);
  const up = parse(gw.stdoutLines()).find((l) => l.msg === 'gateway up')!;
  t.same(up.resolvers, [DEAD_DNS], 'the resolvers other names are forwarded to');
  t.equal(up.uplink, undefined, 'per-host shows no uplink (it showed the TUN as one)');

  // a name the gateway forwards: the client gets SERVFAIL, the log says why
  const dig = await nsExec(topo.client, ['dig', '+time=5', '+tries=1', 'other.example.com'], { allowFail: true });
  t.match(dig.stdout, /status: SERVFAIL/);
  const fwd = await gw.waitForLine((l) => l.includes('"dns lookup failed"') && l.includes('other.example.com'), 10_000);
  t.match(JSON.parse(fwd), { name: 'other.example.com', type: 'A', resolvers: [DEAD_DNS], reason: new RegExp(`^${DEAD_DNS}: (refused|no answer)`) });

  // a mapped name: the client gets its fake IP, the gateway cannot find the real one
  for (const [family, first, second] of [
    ['-4', 'A', 'AAAA'],
    ['-6', 'AAAA', 'A'],
  ] as const) {
    const before = gw.stdoutLines().length;
    const c = await nsExec(topo.client, ['curl', family, '-sS', '--max-time', '20', 'http://api.example.com/'], { allowFail: true, timeoutMs: 30_000 });
    t.not(c.code, 0, `curl ${family} fails`);
    const waitNew = (m: (l: Line) => boolean) =>
      gw.waitForLine((l) => l.startsWith('{') && gw.stdoutLines().indexOf(l) >= before && m(JSON.parse(l)), 20_000).then((l) => JSON.parse(l) as Line);
    const failed = await waitNew((l) => l.msg === 'dns lookup failed' && l.name === 'api.example.com');
    t.equal(failed.type, first, `curl ${family}: the type the client's connection needed`);
    t.same(failed.resolvers, [DEAD_DNS]);
    t.match(failed.reason, new RegExp(`^${first}: .*; ${second}: `), 'both types, in the order asked');
    const conn = await waitNew((l) => l.msg === 'conn' && l.host === 'api.example.com');
    t.match(
      conn.error,
      new RegExp(`^cannot resolve api\\.example\\.com \\(${first}: .*; ${second}: .*; resolvers ${DEAD_DNS.replaceAll('.', '\\.')}\\)$`),
      `the connection's line says the same (${family})`,
    );
    t.notMatch(conn.error, /query(A|Aaaa)/, "not c-ares's label of the last query");
  }
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
});

t.test('run --host: the same line on stderr, the type of the connection first', async (t) => {
  const run = spawnInNs(t, topo.client, tunsteerArgv(['run', '--host', 'api.example.com', '--', 'curl', '-6', '-sS', '--max-time', '30', 'http://api.example.com/']));
  await run.exited();
  const lines = parse(run.stderrText().split('\n'));
  const up = lines.find((l) => l.msg === 'gateway up')!;
  t.same(up.resolvers, [DEAD_DNS], 'the startup line names the resolvers');
  const failed = lines.find((l) => l.msg === 'dns lookup failed' && l.name === 'api.example.com');
  t.ok(failed, 'a line for the failed lookup');
  t.equal(failed?.type, 'AAAA', 'an IPv6 connection asks AAAA first');
  t.match(failed?.reason, /^AAAA: .*; A: /);
});
