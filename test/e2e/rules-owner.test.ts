// Rules on who made a connection, and on rule-set files, end to end: the
// gateway in route-all mode in the client namespace, nginx answering with the
// address it sees, microsocks as the upstream proxy. A connection that went
// through microsocks reaches nginx from the servers namespace's own address,
// a direct one from the client's (192.0.2.1): the route is read at the server,
// not taken from the gateway's word.
//  - user: the same curl as root (direct) and as daemon (through the proxy),
//    by `setpriv --reuid`;
//  - process: curl (direct) and wget (through the proxy), both as root, so
//    the data plane (dropped to nobody) must ask its supervisor for the process;
//  - no owner: the same daemon through the explicit proxy (whose clients are
//    not looked up) does not match the user rule, and its line says why;
//  - rule_set: a file that steers port 8082, replaced (the next connection goes
//    direct), then broken (the last good set stays, the log names the line).
import t from 'tap';
import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, clientResolvConf, makeTopology, nginxConfig, startGateway, tunsteerArgv, waitForGateway, waitForPort } from '../helpers/topology.js';

t.setTimeout(300_000);

const SOCKS_IP = '203.0.113.20';
const CLIENT_IP = '192.0.2.1';

const topo = await makeTopology(t);
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
await nsExec(topo.servers, ['ip', 'addr', 'add', `${SOCKS_IP}/32`, 'dev', 'lo']);
const servers = [80, 8081, 8082].map((p) => `  server { listen ${NGINX_IP}:${p}; location = /addr { return 200 "$remote_addr\\n"; } }`).join('\n');
writeFileSync(join(topo.tmp, 'nginx.conf'), nginxConfig(topo.tmp, servers));
spawnInNs(t, topo.servers, ['nginx', '-c', join(topo.tmp, 'nginx.conf'), '-p', topo.tmp]);
spawnInNs(t, topo.servers, ['microsocks', '-i', SOCKS_IP, '-p', '1080']);
await Promise.all([waitForPort(topo.servers, NGINX_IP, 8082), waitForPort(topo.servers, SOCKS_IP, 1080)]);

// the data plane runs as nobody and reads the set again as nobody
chmodSync(topo.tmp, 0o755);
const setFile = join(topo.tmp, 'steer.txt');
writeFileSync(setFile, `# steered through the proxy\n${NGINX_IP}/32\nsteered.example\n`, { mode: 0o644 });
const config = join(topo.tmp, 'tunsteer.yaml');
writeFileSync(
  config,
  `upstreams:
  socks: { type: socks5, address: "${SOCKS_IP}:1080" }
rule_sets:
  steer: ${setFile}
rules:
  - { port: 80, user: daemon, action: proxy, upstream: socks }
  - { port: 8081, process: wget, action: proxy, upstream: socks }
  - { port: 8082, rule_set: steer, action: proxy, upstream: socks }
`,
);
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--config', config, '--state-dir', stateDir, '--tun-name', 'tso0', '--listen', '127.0.0.1:8080']);
await waitForGateway(topo.client, stateDir, gw);

const url = (port: number) => `http://${NGINX_IP}:${port}/addr`;
const curl = (port: number, as?: string) =>
  nsExec(topo.client, [...(as ? ['setpriv', `--reuid=${as}`, `--regid=${as}`, '--clear-groups'] : []), 'curl', '-sS', '--max-time', '20', url(port)], { timeoutMs: 60_000 }).then(
    (r) => r.stdout.trim(),
  );
const wget = (port: number) => nsExec(topo.client, ['wget', '-q', '-T', '20', '-O', '-', url(port)], { timeoutMs: 60_000 }).then((r) => r.stdout.trim());

type Line = {
  msg?: string;
  dst?: string;
  action?: string;
  upstream?: string;
  owner?: { uid: number; pid?: number; exe?: string } | null;
  owner_why?: string;
  [k: string]: unknown;
};
const lines = (): Line[] =>
  gw.stdoutLines().flatMap((l) => {
    try {
      return [JSON.parse(l) as Line];
    } catch {
      return [];
    }
  });
/** The connection lines to this port, waited for (a line is written when its connection ends). */
async function connLines(port: number, n: number): Promise<Line[]> {
  for (let i = 0; i < 200; i++) {
    const got = lines().filter((l) => l.msg === 'conn' && l.dst === `${NGINX_IP}:${port}`);
    if (got.length >= n) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fewer than ${n} connection lines to port ${port}: ${gw.stdoutLines().slice(-20).join('\n')}`);
}

t.test('user: root goes direct, daemon through the proxy', async (t) => {
  const direct = await curl(80);
  const proxied = await curl(80, 'daemon');
  t.equal(direct, CLIENT_IP, 'root: nginx sees the client');
  t.not(proxied, CLIENT_IP, 'daemon: nginx sees the proxy');
  t.match(proxied, /^(203\.0\.113\.\d+|127\.0\.0\.1)$/);
  const [a, b] = await connLines(80, 2);
  t.match(a, { action: 'direct', owner: { uid: 0 } }, "root's line names its uid");
  t.match(b, { action: 'proxy', upstream: 'socks', owner: { uid: 1 } }, "daemon's line names its uid");
});

t.test('no owner: no match, and the line says why', async (t) => {
  const r = await nsExec(
    topo.client,
    ['setpriv', '--reuid=daemon', '--regid=daemon', '--clear-groups', 'curl', '-sS', '--max-time', '20', '-x', 'http://127.0.0.1:8080', url(80)],
    { timeoutMs: 60_000 },
  );
  t.equal(r.stdout.trim(), CLIENT_IP, 'the user rule did not match: direct');
  let line: Line | undefined;
  for (let i = 0; i < 200 && !(line = lines().find((l) => l.msg === 'http' && l.owner === null)); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(line, { action: 'direct', owner: null, owner_why: /explicit-proxy client/ }, 'the request line has no owner, and says why');
});

t.test('process: curl goes direct, wget through the proxy', async (t) => {
  const direct = await curl(8081);
  const proxied = await wget(8081);
  t.equal(direct, CLIENT_IP, 'curl: nginx sees the client');
  t.not(proxied, CLIENT_IP, 'wget: nginx sees the proxy');
  const [a, b] = await connLines(8081, 2);
  t.match(a, { action: 'direct', owner: { uid: 0, exe: /\/curl$/ } }, "curl's line names the program");
  t.match(b, { action: 'proxy', upstream: 'socks', owner: { uid: 0, exe: /\/wget$/ } }, "wget's line names the program");
  t.ok(typeof b.owner?.pid === 'number' && b.owner.pid > 1, 'and its pid');
  // the data plane could not have read root's /proc/PID/fd itself: its supervisor did
  t.match(
    lines().find((l) => l.msg === 'data plane running'),
    { user: 'nobody' },
    'the data plane runs as nobody',
  );
});

t.test('rule_set: steered, replaced, broken', async (t) => {
  t.not(await curl(8082), CLIENT_IP, 'in the set: through the proxy');
  const tmp = join(topo.tmp, 'steer.new');
  writeFileSync(tmp, '198.51.100.0/24\n', { mode: 0o644 });
  renameSync(tmp, setFile);
  const reloaded = () => lines().some((l) => l.msg === 'rule-set reloaded' && l.rule_set === 'steer');
  for (let i = 0; i < 200 && !reloaded(); i++) await new Promise((r) => setTimeout(r, 50));
  t.ok(reloaded(), 'the gateway says it reloaded the set');
  t.equal(await curl(8082), CLIENT_IP, 'out of the new set: direct');

  writeFileSync(setFile, `${NGINX_IP}/32\nnot a name\n`);
  const kept = () => lines().find((l) => l.msg === 'rule-set not reloaded: the last good set stays');
  for (let i = 0; i < 200 && !kept(); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(kept(), { rule_set: 'steer', line: 2, error: new RegExp(`${setFile}:2: not a domain name`) }, 'the warning names the file and line');
  t.equal(await curl(8082), CLIENT_IP, 'the last good set stays: still direct');
  const all = await connLines(8082, 3);
  t.same(
    all.map((l) => l.action),
    ['proxy', 'direct', 'direct'],
  );
  t.notOk(
    all.some((l) => 'owner' in l),
    'no rule reads the owner here: none looked up',
  );
});

t.test("tunsteer run: the owner is looked up in the program's own namespace", async (t) => {
  const run = async (as?: string) => {
    const c = spawnInNs(t, topo.client, [
      ...tunsteerArgv(['run', '--config', config, '--']),
      ...(as ? ['setpriv', `--reuid=${as}`, `--regid=${as}`, '--clear-groups'] : []),
      'curl',
      '-sS',
      '--max-time',
      '20',
      url(80),
    ]);
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 90_000);
    const { code } = await c.exited();
    clearTimeout(timer);
    const conn = c
      .stderrText()
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Line];
        } catch {
          return [];
        }
      })
      .find((l) => l.msg === 'conn' && l.dst === `${NGINX_IP}:80`);
    return { code, out: out.trim(), conn };
  };
  // the set file was left broken above: a gateway starting now would refuse it (exit 2, naming the line)
  writeFileSync(setFile, '198.51.100.0/24\n');
  const asRoot = await run();
  const asDaemon = await run('daemon');
  t.equal(asRoot.code, 0, 'curl as root succeeded');
  t.equal(asDaemon.code, 0, 'curl as daemon succeeded');
  t.match(asRoot.conn, { action: 'direct', owner: { uid: 0 } }, 'root: direct, its uid found');
  t.match(asDaemon.conn, { action: 'proxy', upstream: 'socks', owner: { uid: 1 } }, 'daemon: through the proxy, its uid found');
  t.not(asDaemon.out, asRoot.out, 'nginx saw two different sources');
});
