// Two security properties of a running gateway, in both modes:
//  - its sockets face only the TUN and loopback: every listening socket of its
//    processes (supervisor and data plane) is bound to 127.0.0.0/8, ::1 or the
//    TUN's address, and no UDP socket waits unconnected on a wildcard address;
//  - a credential configured for header injection (value_env) reaches the
//    server, yet never appears in the gateway's output at log level trace,
//    nor in its state directory.
import t, { type Test } from 'tap';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, spawnNodeInNs, type NsChild } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, PEER_IP, ROOT, clientResolvConf, makeTopology, startDnsPeer, startGateway, tunsteerArgv, waitForGateway, type Topology } from '../helpers/topology.js';

t.setTimeout(300_000);

const SECRET = 's3cret-4f9c2e7a81';
const TOKEN = `Bearer ${SECRET}`;
const UDP_PORT = 7002;
/** The l7-peer HTTP echo runs on the address the test DNS server gives api.example.com. */
const WEB_IP = NGINX_IP;

interface Socket {
  netid: string;
  state: string;
  local: string;
  peer: string;
  line: string;
}

/** Sockets of these processes in the namespace, from `ss -Hantup`. */
async function socketsOf(ns: string, pids: number[]): Promise<Socket[]> {
  const r = await nsExec(ns, ['ss', '-Hantup']);
  return r.stdout
    .split('\n')
    .filter((l) => pids.some((p) => l.includes(`pid=${p},`)))
    .map((line) => {
      const [netid, state, , , local, peer] = line.trim().split(/\s+/);
      return { netid, state, local, peer, line };
    });
}

/** The address part of ss's "addr:port", without brackets or %interface. */
function hostOf(local: string): string {
  return local
    .slice(0, local.lastIndexOf(':'))
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '');
}

const isLoopback = (h: string) => /^127\./.test(h) || h === '::1' || h === '::ffff:127.0.0.1';
const isWildcard = (h: string) => h === '*' || h === '0.0.0.0' || h === '::' || h === '[::]';

async function gatewayPids(ns: string, stateDir: string, gw: NsChild): Promise<number[]> {
  const st = JSON.parse((await nsExec(ns, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status;
  return [gw.pid!, ...(st.dataPlane?.pid ? [st.dataPlane.pid as number] : [])];
}

/** Every regular file under dir, with its text (the state dir is small; its reload socket holds no text). */
function filesUnder(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push({ path: p, text: readFileSync(p, 'latin1') });
  }
  return out;
}

async function servers(topo: Topology): Promise<void> {
  await startDnsPeer(t, topo);
  const web = spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/l7-peer.ts'), ['server', WEB_IP]);
  await web.waitForLine((l) => l.includes('listening'));
  for (const ip of [PEER_IP, WEB_IP]) {
    const u = spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/udp-peer.ts'), ['server', ip, String(UDP_PORT)]);
    await u.waitForLine((l) => l.includes('listening'));
  }
}

const udpEcho = (ns: string, host: string) =>
  nsExec(ns, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-peer.ts'), 'echo', host, String(UDP_PORT), '20'], { allowFail: true, timeoutMs: 60_000 }).then(
    (r) => JSON.parse(r.stdout.trim().split('\n').pop() || '{}'),
  );

const config = (dir: string) => {
  const p = join(dir, 'tunsteer.yaml');
  writeFileSync(p, 'rules:\n  - { domain: api.example.com, action: set-header, header: Authorization, value_env: API_TOKEN }\n');
  return p;
};

/** Listening sockets on loopback or the TUN address only; no unconnected UDP socket on a wildcard address. */
async function checkSockets(t: Test, ns: string, pids: number[], tunAddress: string, expectListening: string[]): Promise<void> {
  const socks = await socketsOf(ns, pids);
  t.comment(`sockets of pids ${pids.join(', ')}:\n${socks.map((s) => s.line).join('\n')}`);
  const listening = socks.filter((s) => s.state === 'LISTEN' || (s.netid === 'udp' && s.state === 'UNCONN'));
  for (const want of expectListening)
    t.ok(
      listening.some((s) => s.local === want),
      `the gateway listens on ${want} (the check sees its sockets)`,
    );
  for (const s of listening) {
    const h = hostOf(s.local);
    t.ok(isLoopback(h) || h === tunAddress, `${s.netid} ${s.state} ${s.local}: loopback or the TUN address ${tunAddress}`);
  }
  const udpWildcard = socks.filter((s) => s.netid === 'udp' && isWildcard(hostOf(s.local)) && (s.state === 'UNCONN' || /[:*]\*$/.test(s.peer)));
  t.same(
    udpWildcard.map((s) => s.line),
    [],
    'no UDP socket waits unconnected on 0.0.0.0 or ::',
  );
  const udp = socks.filter((s) => s.netid === 'udp');
  t.ok(udp.length > 0, `UDP relay sockets exist while the check runs: ${udp.map((s) => `${s.local}->${s.peer}`).join(', ')}`);
}

function checkSecret(t: Test, gw: NsChild, stateDir: string): void {
  const output = gw.stdoutLines().join('\n') + gw.stderrText();
  t.ok(output.length > 0 && gw.stdoutLines().some((l) => l.includes('"msg":"http"')), 'the gateway logged the request (there is output to search)');
  for (const [what, s] of [
    ['the secret', SECRET],
    ['its base64', Buffer.from(SECRET).toString('base64')],
    ['the header value base64', Buffer.from(TOKEN).toString('base64')],
  ]) {
    t.notOk(output.includes(s), `${what} is not in the gateway's stdout/stderr (${output.length} chars at trace level)`);
  }
  const files = filesUnder(stateDir);
  t.ok(files.length > 0, `state dir files searched: ${files.map((f) => f.path.slice(stateDir.length + 1)).join(', ')}`);
  for (const f of files) t.notOk(f.text.includes(SECRET), `the secret is not in ${f.path.slice(stateDir.length + 1)}`);
}

t.test('route-all: sockets on loopback and the TUN only; the injected credential is never logged', async (t) => {
  const topo = await makeTopology(t);
  await servers(topo);
  const resolv = join(topo.tmp, 'resolv.conf');
  writeFileSync(resolv, `nameserver ${DNS_IP}\n`);
  const stateDir = join(topo.tmp, 'state');
  const gw = startGateway(
    t,
    topo.client,
    [
      '--mode',
      'route-all',
      '--state-dir',
      stateDir,
      '--tun-name',
      'tss0',
      '--config',
      config(topo.tmp),
      '--log-level',
      'trace',
      '--listen',
      '127.0.0.1:8080',
      '--metrics',
      '127.0.0.1:9090',
      '--resolv-conf',
      resolv,
    ],
    { env: { ...process.env, API_TOKEN: TOKEN } },
  );
  await waitForGateway(topo.client, stateDir, gw);

  const h = await nsExec(topo.client, ['curl', '-sS', '--max-time', '20', '--resolve', `api.example.com:8080:${WEB_IP}`, 'http://api.example.com:8080/headers'], {
    allowFail: true,
  });
  t.equal(JSON.parse(h.stdout || '{}').authorization, TOKEN, `the server saw the injected header ${h.stderr}`);
  const viaProxy = await nsExec(
    topo.client,
    ['curl', '-sS', '--max-time', '20', '-x', 'http://127.0.0.1:8080', '--resolve', `api.example.com:8080:${WEB_IP}`, 'http://api.example.com:8080/headers'],
    { allowFail: true },
  );
  t.equal(JSON.parse(viaProxy.stdout || '{}').authorization, TOKEN, `through the explicit proxy too ${viaProxy.stderr}`);
  const dig = await nsExec(topo.client, ['dig', '+time=3', '+tries=1', '+short', 'api.example.com', `@${NGINX_IP}`], { allowFail: true });
  t.equal(dig.stdout.trim(), NGINX_IP, 'DNS hijacked and forwarded (a resolver socket was used)');
  t.equal((await udpEcho(topo.client, PEER_IP)).ok, true, 'UDP relayed (a relay socket is open for the check)');

  await checkSockets(t, topo.client, await gatewayPids(topo.client, stateDir, gw), '198.18.0.1', ['127.0.0.1:8080', '127.0.0.1:9090']);
  await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes(`${WEB_IP}:8080`), 10_000);
  checkSecret(t, gw, stateDir);
});

t.test('per-host: sockets on loopback and the TUN only; the injected credential is never logged', async (t) => {
  const topo = await makeTopology(t);
  await servers(topo);
  await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
  const stateDir = join(topo.tmp, 'state');
  const gw = startGateway(
    t,
    topo.client,
    [
      '--mode',
      'per-host',
      '--host',
      'api.example.com',
      '--state-dir',
      stateDir,
      '--tun-name',
      'tsp0',
      '--config',
      config(topo.tmp),
      '--log-level',
      'trace',
      '--listen',
      '127.0.0.1:8080',
      '--metrics',
      '127.0.0.1:9090',
    ],
    { env: { ...process.env, API_TOKEN: TOKEN } },
  );
  await waitForGateway(topo.client, stateDir, gw);

  const h = await nsExec(topo.client, ['curl', '-sS', '--max-time', '20', 'http://api.example.com:8080/headers'], { allowFail: true });
  t.equal(JSON.parse(h.stdout || '{}').authorization, TOKEN, `the server saw the injected header ${h.stderr}`);
  const fake = (await nsExec(topo.client, ['dig', '+time=3', '+tries=1', '+short', 'api.example.com'])).stdout.trim();
  t.match(fake, /^198\.1[89]\./, 'the name maps to a fake IP');
  t.equal((await nsExec(topo.client, ['dig', '+time=3', '+tries=1', '+short', 'other.example.com'])).stdout.trim(), NGINX_IP, 'other names are forwarded');
  t.equal((await udpEcho(topo.client, fake)).ok, true, 'UDP to the fake IP relayed (a relay socket is open for the check)');

  await checkSockets(t, topo.client, await gatewayPids(topo.client, stateDir, gw), '198.18.0.1', ['127.0.0.1:8080', '127.0.0.1:9090']);
  await gw.waitForLine((l) => l.includes('"msg":"conn"') && l.includes('api.example.com'), 10_000);
  checkSecret(t, gw, stateDir);
});
