// The L7 proxy core end to end, gateway in route-all mode: header injection on
// kept-alive connections, TLS SNI rules, HTTP 403, SOCKS5 and HTTP CONNECT
// upstreams (microsocks, tinyproxy), WebSocket, a 100 MB chunked upload, a
// server-first protocol, the explicit proxy (HTTP and SOCKS5, and `tunsteer
// proxy` without root), and metrics. Real peers in namespaces.
import t from 'tap';
import { join } from 'node:path';
import { writeFileSync, mkdirSync, rmSync, chmodSync } from 'node:fs';
import { nsExec, spawnInNs, type NsChild } from '../helpers/netns.js';
import { selfSignedCert } from '../helpers/real/certs.js';
import { DNS_IP, NGINX_IP, ROOT, makeTopology, startDnsPeer, startGateway, tunsteerArgv, waitForGateway, waitForPort, type Topology } from '../helpers/topology.js';

t.setTimeout(600_000);

const SOCKS_IP = '203.0.113.20';
const HTTP_PROXY_IP = '203.0.113.21';
const L7_IP = '203.0.113.30';
const TOKEN = 'Bearer s3cret-token-4d7f1';
const SOCKS_PASSWORD = 's3cret-socks-pw';

const topo = await makeTopology(t);
for (const ip of [SOCKS_IP, HTTP_PROXY_IP, L7_IP]) await nsExec(topo.servers, ['ip', 'addr', 'add', `${ip}/32`, 'dev', 'lo']);

/** Names for the explicit-proxy tests: ip netns exec bind-mounts /etc/netns/NS/hosts over /etc/hosts. */
async function hostsFile(ns: string): Promise<void> {
  const dir = `/etc/netns/${ns}`;
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const names = ['api.example.com', 'other.example', 'web-blocked.example', 'tls-ok.example', 'tls-blocked.example', 'x.via-socks.example'];
  const text = `127.0.0.1 localhost\n${names.map((n) => `${NGINX_IP} ${n}`).join('\n')}\n`;
  writeFileSync(join(dir, 'hosts'), text);
  const seen = await nsExec(ns, ['cat', '/etc/hosts']);
  if (seen.stdout !== text) throw new Error(`${ns} does not see its own hosts file: refusing to run`);
}

async function startServers(topo: Topology): Promise<{ socks: NsChild; tinyproxyLog: string }> {
  const d = topo.tmp;
  await selfSignedCert(topo.servers, { key: `${d}/key.pem`, cert: `${d}/cert.pem` }, 'tls-ok.example', 'DNS:tls-ok.example,DNS:tls-blocked.example');
  writeFileSync(
    `${d}/nginx.conf`,
    `daemon off;
master_process off;
worker_processes 1;
user root;
pid ${d}/nginx.pid;
error_log ${d}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  server {
    listen ${NGINX_IP}:80;
    location = /hello { return 200 "hello from nginx\\n"; }
    location = /echo { return 200 "host=[$host] auth=[$http_authorization] cookie=[$http_cookie]\\n"; }
  }
  server {
    listen ${NGINX_IP}:443 ssl;
    server_name tls-ok.example tls-blocked.example;
    ssl_certificate ${d}/cert.pem;
    ssl_certificate_key ${d}/key.pem;
    location / { return 200 "tls page for $host\\n"; }
  }
}
`,
  );
  spawnInNs(t, topo.servers, ['nginx', '-c', `${d}/nginx.conf`, '-p', d]);
  const socks = spawnInNs(t, topo.servers, ['microsocks', '-i', SOCKS_IP, '-p', '1080']);
  spawnInNs(t, topo.servers, ['microsocks', '-i', SOCKS_IP, '-p', '1081', '-u', 'tsuser', '-P', SOCKS_PASSWORD]);
  const tinyproxyLog = `${d}/tinyproxy.log`;
  writeFileSync(tinyproxyLog, '');
  chmodSync(tinyproxyLog, 0o666);
  chmodSync(d, 0o755);
  writeFileSync(
    `${d}/tinyproxy.conf`,
    `User nobody\nGroup nogroup\nPort 3128\nListen ${HTTP_PROXY_IP}\nTimeout 60\nLogFile "${tinyproxyLog}"\nLogLevel Connect\nMaxClients 20\nAllow 192.0.2.0/24\nPidFile "${d}/tinyproxy.pid"\n`,
  );
  spawnInNs(t, topo.servers, ['tinyproxy', '-d', '-c', `${d}/tinyproxy.conf`]);
  const peer = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/l7-peer.ts'), 'server', L7_IP]);
  await peer.waitForLine((l) => l.includes('listening'));
  await Promise.all([
    waitForPort(topo.servers, NGINX_IP, 443),
    waitForPort(topo.servers, SOCKS_IP, 1080),
    waitForPort(topo.servers, SOCKS_IP, 1081),
    waitForPort(topo.servers, HTTP_PROXY_IP, 3128),
  ]);
  return { socks, tinyproxyLog };
}

// before the servers start: microsocks resolves names with the namespace's hosts file
await hostsFile(topo.client);
await hostsFile(topo.servers);
const servers = await startServers(topo);
// the gateway's resolver: a secret header goes only to an address it resolved for the name (api.example.com is on nginx and the L7 peer)
await startDnsPeer(t, topo, { 'api.example.com': [NGINX_IP, L7_IP] });
const resolvConf = join(topo.tmp, 'resolv.conf');
writeFileSync(resolvConf, `nameserver ${DNS_IP}\n`);

const config = join(topo.tmp, 'tunsteer.yaml');
writeFileSync(
  config,
  `upstreams:
  socks: { type: socks5, address: "${SOCKS_IP}:1080" }
  corp-http: { type: http, address: "${HTTP_PROXY_IP}:3128" }
  dead: { type: socks5, address: "203.0.113.99:1080" }
  socks-auth: { type: socks5, address: "${SOCKS_IP}:1081", username: tsuser, password_env: SOCKS_PASSWORD }
  socks-badauth: { type: socks5, address: "${SOCKS_IP}:1081", username: tsuser, password_file: ${join(topo.tmp, 'wrong-pw')} }
rules:
  - { domain: api.example.com, action: set-header, header: Authorization, value_env: API_TOKEN }
  - { domain: strip.example, action: remove-header, header: Cookie }
  - { domain: [tls-blocked.example, web-blocked.example], action: reject }
  - { domain_suffix: via-socks.example, action: proxy, upstream: socks }
  - { domain_suffix: via-http.example, action: proxy, upstream: corp-http }
  - { domain: dead.example, action: proxy, upstream: dead }
  - { domain: auth.example, action: proxy, upstream: socks-auth }
  - { domain: badauth.example, action: proxy, upstream: socks-badauth }
`,
);
writeFileSync(join(topo.tmp, 'wrong-pw'), 'not-the-password\n');
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(
  t,
  topo.client,
  [
    '--mode',
    'route-all',
    '--config',
    config,
    '--state-dir',
    stateDir,
    '--tun-name',
    'tsl0',
    '--connect-timeout',
    '3000',
    '--listen',
    '127.0.0.1:8080',
    '--metrics',
    '127.0.0.1:9090',
    '--resolv-conf',
    resolvConf,
  ],
  { env: { ...process.env, API_TOKEN: TOKEN, SOCKS_PASSWORD } },
);
await waitForGateway(topo.client, stateDir, gw);

const curl = (args: string[], ns = topo.client) => nsExec(ns, ['curl', '-sS', '--max-time', '20', ...args], { allowFail: true, timeoutMs: 60_000 });
const resolve = (name: string, port = 80) => ['--resolve', `${name}:${port}:${NGINX_IP}`];
const peer = (...args: string[]) =>
  nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/l7-peer.ts'), ...args], { allowFail: true, timeoutMs: 120_000 }).then((r) =>
    JSON.parse(r.stdout.trim().split('\n').pop() || '{}'),
  );
const gatewayOutput = () => gw.stdoutLines().join('\n') + gw.stderrText();

t.test('set-header: the token reaches only its host, on every request of a kept-alive connection', async (t) => {
  const r = await curl([...resolve('api.example.com'), '-w', 'connects=%{num_connects}\\n', 'http://api.example.com/echo', 'http://api.example.com/echo']);
  t.equal(r.stdout, `host=[api.example.com] auth=[${TOKEN}] cookie=[]\nconnects=1\nhost=[api.example.com] auth=[${TOKEN}] cookie=[]\nconnects=0\n`, r.stderr);
  const other = await curl([...resolve('other.example'), 'http://other.example/echo']);
  t.equal(other.stdout, 'host=[other.example] auth=[] cookie=[]\n');
  const alt = await peer('alternate', L7_IP, '8080');
  t.same(
    alt.seen,
    [
      { host: 'api.example.com', authorization: TOKEN, sameSocket: true },
      { host: 'other.example', sameSocket: true },
      { host: 'api.example.com', authorization: TOKEN, sameSocket: true },
    ],
    'decided per request on one connection',
  );
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"msg":"http"') && l.includes('api.example.com') && l.includes('/echo')));
  t.match(line, { method: 'GET', host: 'api.example.com', path: '/echo', status: 200, rule: 'rules[0]', action: 'set-header' });
  t.notOk(gatewayOutput().includes('s3cret'), 'the secret is never logged');
});

t.test('remove-header strips a header for its host only', async (t) => {
  const a = await curl([...resolve('strip.example'), '-H', 'Cookie: session=abc', 'http://strip.example/echo']);
  t.equal(a.stdout, 'host=[strip.example] auth=[] cookie=[]\n');
  const b = await curl([...resolve('other.example'), '-H', 'Cookie: session=abc', 'http://other.example/echo']);
  t.equal(b.stdout, 'host=[other.example] auth=[] cookie=[session=abc]\n');
});

t.test('TLS: an SNI rule resets one host at once; the other gets the server its own certificate', async (t) => {
  const t0 = Date.now();
  const blocked = await curl([...resolve('tls-blocked.example', 443), '--cacert', `${topo.tmp}/cert.pem`, 'https://tls-blocked.example/']);
  t.not(blocked.code, 0);
  t.match(blocked.stderr, /reset/i);
  t.ok(Date.now() - t0 < 5000, 'fails at once, not by a timeout');
  const ok = await curl([...resolve('tls-ok.example', 443), '--cacert', `${topo.tmp}/cert.pem`, '-w', 'verify=%{ssl_verify_result}', 'https://tls-ok.example/']);
  t.equal(ok.stdout, 'tls page for tls-ok.example\nverify=0', ok.stderr);
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"sni":"tls-ok.example"')));
  t.match(line, { proto: 'tls', host: 'tls-ok.example', rule: 'default', action: 'direct', end: 'closed' });
  const rej = JSON.parse(await gw.waitForLine((l) => l.includes('"sni":"tls-blocked.example"')));
  t.match(rej, { proto: 'tls', action: 'reject', end: 'rejected' });
});

t.test('reject on HTTP is an honest 403 with a short body', async (t) => {
  const r = await curl([...resolve('web-blocked.example'), '-w', '\\n%{http_code}', 'http://web-blocked.example/hello']);
  t.equal(r.stdout, 'Blocked by tunsteer rule "rules[2]".\n\n403');
});

t.test('upstreams: SOCKS5 and HTTP CONNECT carry the traffic (their logs show it); a dead one fails cleanly', async (t) => {
  const s = await curl([...resolve('x.via-socks.example'), 'http://x.via-socks.example/hello']);
  t.equal(s.stdout, 'hello from nginx\n', s.stderr);
  await new Promise((r) => setTimeout(r, 200));
  t.match(servers.socks.stdoutLines().join('\n') + servers.socks.stderrText(), new RegExp(`connected to ${NGINX_IP.replace(/\./g, '\\.')}:80`));
  const h = await curl([...resolve('y.via-http.example'), 'http://y.via-http.example/hello']);
  t.equal(h.stdout, 'hello from nginx\n', h.stderr);
  const log = (await nsExec(topo.servers, ['cat', servers.tinyproxyLog])).stdout;
  t.match(log, new RegExp(`CONNECT.*${NGINX_IP.replace(/\./g, '\\.')}:80|${NGINX_IP.replace(/\./g, '\\.')}`), 'tinyproxy saw the CONNECT');
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"upstream":"corp-http"') && l.includes('"msg":"conn"')));
  t.match(line, { action: 'proxy', host: 'y.via-http.example' });
  const dead = await curl([...resolve('dead.example'), '-w', '\\n%{http_code}', 'http://dead.example/hello']);
  t.match(dead.stdout, /\n502$/);
  const deadLine = JSON.parse(await gw.waitForLine((l) => l.includes('"upstream":"dead"')));
  t.match(deadLine.end, /^upstream-/);
});

t.test('SOCKS5 with username/password: the right one passes, a wrong one fails cleanly; neither is logged', async (t) => {
  const ok = await curl([...resolve('auth.example'), 'http://auth.example/hello']);
  t.equal(ok.stdout, 'hello from nginx\n', ok.stderr);
  const bad = await curl([...resolve('badauth.example'), '-w', '\n%{http_code}', 'http://badauth.example/hello']);
  t.match(bad.stdout, /\n502$/);
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"upstream":"socks-badauth"') && l.includes('"msg":"conn"')));
  t.match(line.end, /^upstream-/);
  t.notOk(gatewayOutput().includes(SOCKS_PASSWORD), 'the password is never logged');
  t.notOk(gatewayOutput().includes('not-the-password'));
});

t.test('pipelined requests on one connection are answered in order, each under its own rule', async (t) => {
  const script =
    `const s=require('net').connect(80,'${NGINX_IP}');let b='';s.on('data',d=>b+=d);s.on('end',()=>{console.log(JSON.stringify(b));process.exit(0)});` +
    `s.write('GET /echo HTTP/1.1\\r\\nHost: api.example.com\\r\\n\\r\\nGET /echo HTTP/1.1\\r\\nHost: other.example\\r\\n\\r\\nGET /echo HTTP/1.1\\r\\nHost: api.example.com\\r\\nConnection: close\\r\\n\\r\\n');setTimeout(()=>process.exit(1),10000)`;
  const r = await nsExec(topo.client, [process.execPath, '-e', script], { allowFail: true });
  const text: string = JSON.parse(r.stdout || '""');
  const bodies = text
    .split('\r\n\r\n')
    .slice(1)
    .map((p) => p.split('\n')[0]);
  t.same(bodies, [`host=[api.example.com] auth=[${TOKEN}] cookie=[]`, 'host=[other.example] auth=[] cookie=[]', `host=[api.example.com] auth=[${TOKEN}] cookie=[]`]);
});

t.test('WebSocket upgrade and a 100 MB chunked upload pass unchanged', async (t) => {
  const ws = await peer('ws', L7_IP, '8080', String(4 << 20));
  t.equal(ws.status, 101);
  t.equal(ws.echoed, ws.sent, 'the echo after the upgrade is byte-exact (sha256)');
  const file = join(topo.tmp, 'up100m.bin');
  await nsExec(topo.client, ['sh', '-c', `head -c 100M /dev/urandom > ${file}`]);
  const want = (await nsExec(topo.client, ['sha256sum', file])).stdout.split(' ')[0];
  const r = await curl(['-X', 'POST', '-T', file, '-H', 'Transfer-Encoding: chunked', '-H', 'Host: upload.example', `http://${L7_IP}:8080/upload`]);
  const got = JSON.parse(r.stdout || '{}');
  t.same(got, { sha256: want, bytes: 100 * 1024 * 1024, chunked: true }, r.stderr);
});

t.test('a server-first protocol greets within the sniff timeout', async (t) => {
  const g = await peer('greet', L7_IP, '2525');
  t.equal(g.ok, true);
  t.ok(g.ms < 300 + 1000, `greeting after ${g.ms} ms (sniff timeout 300 ms)`);
});

t.test('explicit proxy: HTTP proxy and SOCKS5 on one port, under the same rules', async (t) => {
  const h = await curl(['--proxy', 'http://127.0.0.1:8080', 'http://api.example.com/echo']);
  t.equal(h.stdout, `host=[api.example.com] auth=[${TOKEN}] cookie=[]\n`, h.stderr);
  const blocked = await curl(['--proxy', 'http://127.0.0.1:8080', '-w', '%{http_code}', '-o', '/dev/null', 'http://web-blocked.example/hello']);
  t.equal(blocked.stdout, '403');
  const tlsOk = await curl(['--proxy', 'http://127.0.0.1:8080', '--cacert', `${topo.tmp}/cert.pem`, 'https://tls-ok.example/']);
  t.equal(tlsOk.stdout, 'tls page for tls-ok.example\n', tlsOk.stderr);
  const tlsBlocked = await curl(['--proxy', 'http://127.0.0.1:8080', '--cacert', `${topo.tmp}/cert.pem`, 'https://tls-blocked.example/']);
  t.not(tlsBlocked.code, 0);
  t.match(tlsBlocked.stderr, /403/);
  const s = await curl(['--socks5-hostname', '127.0.0.1:8080', 'http://api.example.com/echo']);
  t.equal(s.stdout, `host=[api.example.com] auth=[${TOKEN}] cookie=[]\n`, s.stderr);
  const viaSocks = await curl(['--socks5-hostname', '127.0.0.1:8080', 'http://x.via-socks.example/hello']);
  t.equal(viaSocks.stdout, 'hello from nginx\n');
  const sb = await curl(['--socks5-hostname', '127.0.0.1:8080', 'http://tls-blocked.example/']);
  t.not(sb.code, 0, 'a SOCKS5 client is refused by the rule');
});

t.test('`tunsteer proxy` runs without root and applies the config', async (t) => {
  // nobody must be able to read the code it runs: a clone in /root or in a mktemp -d dir (mode 700) is not
  const readable = await nsExec(topo.servers, ['setpriv', '--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', 'test', '-r', join(ROOT, 'src/cli/main.ts')], {
    allowFail: true,
  });
  if (readable.code !== 0) {
    t.skip('the repository is not readable by nobody on this machine', () => {});
    return;
  }
  const p = spawnInNs(
    t,
    topo.servers,
    ['setpriv', '--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', ...tunsteerArgv(['proxy', '--listen', '127.0.0.1:8081', '--config', config])],
    {
      // without tap's NODE_OPTIONS: its process-info hooks would write into the repo as nobody
      env: { ...process.env, NODE_OPTIONS: '', API_TOKEN: TOKEN, SOCKS_PASSWORD, HOME: '/tmp' },
    },
  );
  const up = JSON.parse(await p.waitForLine((l) => l.includes('proxy listening')));
  t.equal(up.user, 65534, 'runs as nobody');
  const r = await curl(['--proxy', 'http://127.0.0.1:8081', 'http://api.example.com/echo'], topo.servers);
  t.equal(r.stdout, `host=[api.example.com] auth=[${TOKEN}] cookie=[]\n`, r.stderr);
  const s = await curl(['--socks5-hostname', '127.0.0.1:8081', 'http://other.example/echo'], topo.servers);
  t.equal(s.stdout, 'host=[other.example] auth=[] cookie=[]\n');
  p.kill('SIGTERM');
  t.equal((await p.exited()).code, 0);
});

t.test('metrics on loopback: connections, rule hits, stack counters', async (t) => {
  const m = await curl(['http://127.0.0.1:9090/metrics']);
  t.match(m.stdout, /tunsteer_rule_hits_total\{rule="rules\[0\]"\} [1-9]/);
  t.match(m.stdout, /tunsteer_packets_total\{direction="in"\} [1-9]/);
  t.match(m.stdout, /tunsteer_http_requests_total [1-9]/);
  t.match(m.stdout, /tunsteer_connections_total\{outcome="rejected"\} [1-9]/);
  t.match(m.stdout, /tunsteer_connections_active \d/);
});

t.test('normal exit', async (t) => {
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0);
  t.notOk(gatewayOutput().includes('s3cret'), 'the secret never reached a log line');
});
