// A fake IP never reaches the wrong host (issue 20, item 2). Per-host mode
// with a /28 pool (11 addresses) and 21 names, each on a server of its own:
//  - with the default hold (1 h) a.example.test keeps its address while a
//    client may still hold the answer; the names past the pool's size get
//    SERVFAIL, and `status` shows the pool full;
//  - with a 1 s hold the address is recycled for n11.example.test, and a
//    client still holding a's answer is refused (HTTP: 421, TLS: reset), with
//    a log line, never answered by n11's server. A connection that names no
//    host (HTTP/1.0 without Host, opaque TCP) goes to the address's current
//    name: that is what the hold time is for.
import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { selfSignedCert } from '../helpers/real/certs.js';
import { DNS_IP, ROOT, clientResolvConf, makeTopology, nginxConfig, startDnsPeer, startGateway, tunsteerArgv, waitForGateway, waitForPort } from '../helpers/topology.js';

t.setTimeout(300_000);

const A_IP = '203.0.113.140';
const N_IP = (i: number) => `203.0.113.${140 + i}`;
const NAMES = ['a', ...Array.from({ length: 20 }, (_, i) => `n${i + 1}`)].map((n) => `${n}.example.test`);

const topo = await makeTopology(t);
for (let i = 0; i <= 20; i++) await nsExec(topo.servers, ['ip', 'addr', 'add', `${N_IP(i)}/32`, 'dev', 'lo']);
const d = topo.tmp;
await selfSignedCert(topo.servers, { key: `${d}/key.pem`, cert: `${d}/cert.pem` }, 'any.example.test');
writeFileSync(
  `${d}/nginx.conf`,
  nginxConfig(
    d,
    `  server { listen 80; listen 443 ssl; ssl_certificate ${d}/cert.pem; ssl_certificate_key ${d}/key.pem; location / { return 200 "server=[$server_addr] host=[$host]\\n"; } }`,
  ),
);
spawnInNs(t, topo.servers, ['nginx', '-c', `${d}/nginx.conf`, '-p', d]);
await waitForPort(topo.servers, '0.0.0.0', 443);
await startDnsPeer(t, topo, Object.fromEntries(NAMES.map((n, i) => [n, [N_IP(i)]])));
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);

const dig = async (name: string) => {
  const r = await nsExec(topo.client, ['dig', '+time=3', '+tries=1', name], { allowFail: true });
  const status = /status: (\w+)/.exec(r.stdout)?.[1];
  const ip = new RegExp(`^${name.replaceAll('.', '\\.')}\\.\\s+\\d+\\s+IN\\s+A\\s+(\\S+)$`, 'm').exec(r.stdout)?.[1];
  return { status, ip };
};
const curl = (args: string[]) => nsExec(topo.client, ['curl', '-sS', '--max-time', '10', ...args], { allowFail: true });
const counters = async (stateDir: string) => {
  await new Promise((r) => setTimeout(r, 1200)); // one status period
  return JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status.counters as Record<string, number>;
};

t.test("default hold: the address stays a's; names past the pool get SERVFAIL; status shows the pool full", async (t) => {
  const stateDir = join(d, 'state-hold');
  const gw = startGateway(t, topo.client, ['--mode', 'per-host', '--host', '*.example.test', '--fake-pool', '198.18.0.0/28', '--state-dir', stateDir, '--tun-name', 'tsf0']);
  await waitForGateway(topo.client, stateDir, gw);
  const a = await dig(NAMES[0]);
  t.equal(a.ip, '198.18.0.4', 'a gets the first address');
  const answers = [];
  for (const n of NAMES.slice(1)) answers.push(await dig(n));
  t.equal(answers.filter((r) => r.status === 'NOERROR' && r.ip).length, 10, 'ten more names fit (11 addresses in a /28)');
  t.same(
    answers.slice(10).map((r) => r.status),
    Array(10).fill('SERVFAIL'),
    "the rest: SERVFAIL, not another name's address",
  );
  const r = await curl(['--resolve', `${NAMES[0]}:80:198.18.0.4`, `http://${NAMES[0]}/`]);
  t.equal(r.stdout, `server=[${A_IP}] host=[${NAMES[0]}]\n`, `a client holding a's answer reaches a's server ${r.stderr}`);
  const c = await counters(stateDir);
  t.match(c, { fake_mappings: 11, fake_capacity: 11, fake_recycled: 0, fake_exhausted: 10 });
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0, 'exit 0 after a clean stop on SIGTERM');
});

t.test("a 1 s hold: the address is recycled, and a client holding the old answer is refused, never answered by the new name's server", async (t) => {
  const stateDir = join(d, 'state-short');
  const gw = startGateway(t, topo.client, [
    '--mode',
    'per-host',
    '--host',
    '*.example.test',
    '--fake-pool',
    '198.18.0.0/28',
    '--fake-ip-hold',
    '1000',
    '--state-dir',
    stateDir,
    '--tun-name',
    'tsf1',
  ]);
  await waitForGateway(topo.client, stateDir, gw);
  t.equal((await dig(NAMES[0])).ip, '198.18.0.4');
  for (const n of NAMES.slice(1, 11)) t.equal((await dig(n)).status, 'NOERROR');
  await new Promise((r) => setTimeout(r, 1500));
  const n11 = await dig(NAMES[11]);
  t.equal(n11.ip, '198.18.0.4', "past its hold, a's address (the least recently used) goes to n11");

  const http = await curl(['-w', '\\n%{http_code}', '--resolve', `${NAMES[0]}:80:198.18.0.4`, `http://${NAMES[0]}/`]);
  t.match(http.stdout, /\n421$/, `HTTP for a on n11's address: 421 Misdirected Request ${http.stderr}`);
  t.notOk(http.stdout.includes(N_IP(11)), "n11's server never answered");
  t.match(http.stdout, /resolve the name again/);
  const httpLine = JSON.parse(await gw.waitForLine((l) => l.includes('fake IP names another host: 421')));
  t.match(httpLine, { mapped: NAMES[11], host: NAMES[0] });

  const tls = await curl(['-k', '--resolve', `${NAMES[0]}:443:198.18.0.4`, `https://${NAMES[0]}/`]);
  t.not(tls.code, 0);
  t.match(tls.stderr, /reset|SSL_ERROR_SYSCALL|connection/i, "TLS for a on n11's address: reset");
  const tlsLine = JSON.parse(await gw.waitForLine((l) => l.includes('fake IP names another host: reset')));
  t.match(tlsLine, { mapped: NAMES[11], sni: NAMES[0] });

  // no name in the request: it goes to the address's current name (documented; the hold time is the guard)
  const job = { proto: 'tcp', host: '198.18.0.4', port: 80, parts: [Buffer.from('GET / HTTP/1.0\r\n\r\n').toString('base64')], waitMs: 3000 };
  const noName = await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/raw-client.ts'), JSON.stringify(job)]);
  t.match(Buffer.from(JSON.parse(noName.stdout).got, 'base64').toString(), new RegExp(`server=\\[${N_IP(11).replaceAll('.', '\\.')}\\]`));

  const ok = await curl([`http://${NAMES[11]}/`]);
  t.equal(ok.stdout, `server=[${N_IP(11)}] host=[${NAMES[11]}]\n`, 'n11 itself works through its new address');
  const c = await counters(stateDir);
  t.ok(c.fake_recycled >= 1, `recycled: ${c.fake_recycled}`);
  t.ok(c.proxy_fakeIpMismatch >= 2, `mismatches counted: ${c.proxy_fakeIpMismatch}`);
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0, 'exit 0 after a clean stop on SIGTERM');
});
