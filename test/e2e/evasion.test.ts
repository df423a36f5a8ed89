// The evasion suite (issue 20): every way around a rule we know of, sent as
// raw bytes through a route-all gateway to nginx, and the same bytes straight
// to nginx for comparison. Each one is either caught by its rule (403, a
// reset, port unreachable) or refused (400, 421), never passed unseen: nginx
// behind the gateway never serves its blocked vhost, and the secret header
// never reaches another address than its name's.
//
//   rules: blocked.example.test reject; app.example.test set-header (a secret);
//          strip.example.test remove-header X-Internal; tlsapp/tlsbad set-header
//          with upstream_tls; and fail closed: unknown or opaque TCP to ports
//          80 and 443, and unknown UDP to 443, are rejected.
import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { nsExec, spawnInNs } from '../helpers/netns.js';
import { caSignedCert, selfSignedCert } from '../helpers/real/certs.js';
import {
  DNS_IP,
  NGINX_IP,
  ROOT,
  clientResolvConf,
  makeTopology,
  startDnsPeer,
  startGateway,
  waitForGateway,
  waitForPort,
  nginxConfig,
  type Topology,
} from '../helpers/topology.js';
import { captureClientHello } from '../helpers/sniff-capture.js';
import { QUIC_V2, clientHelloMessage, initialDatagrams } from '../helpers/quic-initial-encoder.js';

t.setTimeout(600_000);

const APP_IP = '203.0.113.7';
const OTHER_IP = '203.0.113.8';
const TOKEN = 'Bearer ev4sion-s3cret';
const BLOCKED = 'BLOCKED-VHOST';

const topo = await makeTopology(t);
for (const ip of [APP_IP, OTHER_IP]) await nsExec(topo.servers, ['ip', 'addr', 'add', `${ip}/32`, 'dev', 'lo']);

async function certs(topo: Topology): Promise<void> {
  const d = topo.tmp;
  const ca = { key: `${d}/ca.key`, cert: `${d}/ca.pem` };
  await selfSignedCert(topo.servers, ca, 'tunsteer test CA');
  for (const [name, sans] of [
    ['web', 'DNS:blocked.example.test,DNS:ok.example.test'],
    ['app', 'DNS:tlsapp.example.test'],
    ['other', 'DNS:other.example.test'],
  ]) {
    await caSignedCert(topo.servers, ca, { key: `${d}/${name}.key`, cert: `${d}/${name}.pem` }, name, sans);
  }
}

async function startServers(topo: Topology): Promise<void> {
  const d = topo.tmp;
  await certs(topo);
  const echo = (what: string) => `return 200 "${what} host=[$host] auth=[$http_authorization] x-internal=[$http_x_internal] https=[$https]\\n";`;
  writeFileSync(
    `${d}/nginx.conf`,
    nginxConfig(
      d,
      `  server { listen ${NGINX_IP}:80 default_server; server_name _; location / { ${echo('DEFAULT')} } }
  server { listen ${NGINX_IP}:80; server_name blocked.example.test; location / { ${echo(BLOCKED)} } }
  server { listen ${APP_IP}:80; location / { ${echo('APP')} } }
  server { listen ${OTHER_IP}:80; location / { ${echo('OTHER')} } }
  server { listen ${NGINX_IP}:8081; location / { ${echo('PLAIN')} } }
  server { listen ${NGINX_IP}:443 ssl default_server; server_name ok.example.test; ssl_certificate ${d}/web.pem; ssl_certificate_key ${d}/web.key; location / { ${echo('TLS-OK')} } }
  server { listen ${NGINX_IP}:443 ssl; server_name blocked.example.test; ssl_certificate ${d}/web.pem; ssl_certificate_key ${d}/web.key; location / { ${echo('TLS-BLOCKED')} } }
  server { listen ${APP_IP}:443 ssl; ssl_certificate ${d}/app.pem; ssl_certificate_key ${d}/app.key; location / { ${echo('TLS-APP')} } }
  server { listen ${OTHER_IP}:443 ssl; ssl_certificate ${d}/other.pem; ssl_certificate_key ${d}/other.key; location / { ${echo('TLS-OTHER')} } }`,
    ),
  );
  spawnInNs(t, topo.servers, ['nginx', '-c', `${d}/nginx.conf`, '-p', d]);
  const udp = spawnInNs(t, topo.servers, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-peer.ts'), 'server', NGINX_IP, '443']);
  await udp.waitForLine((l) => l.includes('listening'));
  await Promise.all([waitForPort(topo.servers, NGINX_IP, 443), waitForPort(topo.servers, OTHER_IP, 443)]);
}

await startServers(topo);
await startDnsPeer(t, topo, {
  'blocked.example.test': [NGINX_IP],
  'ok.example.test': [NGINX_IP],
  'strip.example.test': [NGINX_IP],
  'app.example.test': [APP_IP],
  'tlsapp.example.test': [APP_IP],
  'tlsbad.example.test': [OTHER_IP],
});
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
const resolv = join(topo.tmp, 'resolv.conf');
writeFileSync(resolv, `nameserver ${DNS_IP}\n`);
const config = join(topo.tmp, 'evasion.yaml');
writeFileSync(
  config,
  `rules:
  - { domain: blocked.example.test, action: reject }
  - { domain: app.example.test, action: set-header, header: Authorization, value_env: TOK }
  - { domain: strip.example.test, action: remove-header, header: X-Internal }
  - { name: strip-by-port, port: 8081, action: remove-header, header: X-Internal }
  - { domain: [tlsapp.example.test, tlsbad.example.test], action: set-header, header: Authorization, value_env: TOK, upstream_tls: { ca_file: ${topo.tmp}/ca.pem } }
  - { name: fail-closed, protocol: [unknown, tcp], port: [80, 443], action: reject }
`,
);
const stateDir = join(topo.tmp, 'state');
const gw = startGateway(
  t,
  topo.client,
  ['--mode', 'route-all', '--config', config, '--state-dir', stateDir, '--tun-name', 'tsv0', '--resolv-conf', resolv, '--listen', '127.0.0.1:8080'],
  { env: { ...process.env, TOK: TOKEN } },
);
await waitForGateway(topo.client, stateDir, gw);

interface RawResult {
  got: string;
  end: string;
  answers?: number;
}

interface RawJob {
  host: string;
  port: number;
  parts: (string | Buffer)[];
  gapMs?: number;
  waitMs?: number;
  proto?: 'tcp' | 'udp';
}

/** Runs the jobs one after the other in one process in `ns` (test/helpers/raw-client.ts). */
async function rawMany(ns: string, jobs: RawJob[]): Promise<RawResult[]> {
  const wire = jobs.map((j) => ({
    proto: j.proto ?? 'tcp',
    host: j.host,
    port: j.port,
    parts: j.parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p).toString('base64')),
    gapMs: j.gapMs ?? 0,
    waitMs: j.waitMs ?? 1500,
  }));
  const r = await nsExec(ns, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/raw-client.ts'), JSON.stringify(wire)], { timeoutMs: 300_000 });
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { got?: string; end: string; answers?: number }[];
  return out.map((j) => ({ got: Buffer.from(j.got ?? '', 'base64').toString('latin1'), end: j.end, answers: j.answers }));
}
const raw = async (ns: string, host: string, port: number, parts: (string | Buffer)[], o: Omit<RawJob, 'host' | 'port' | 'parts'> = {}) =>
  (await rawMany(ns, [{ host, port, parts, ...o }]))[0];
/** The same bytes through the gateway (client namespace) and straight to nginx (servers namespace), case by case. */
async function both(cases: { parts: (string | Buffer)[]; gapMs?: number; port?: number }[]): Promise<{ via: RawResult; direct: RawResult }[]> {
  const jobs = cases.map((c) => ({ host: NGINX_IP, port: c.port ?? 80, parts: c.parts, gapMs: c.gapMs }));
  const [via, direct] = await Promise.all([rawMany(topo.client, jobs), rawMany(topo.servers, jobs)]);
  return via.map((v, i) => ({ via: v, direct: direct[i] }));
}
const statusLine = (s: string) => /^HTTP\/1\.[01] (\d{3})/.exec(s)?.[1] ?? (s.length ? 'bytes' : 'nothing');
const statuses = (s: string) => [...s.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]).join(',');

const H = 'blocked.example.test';
// [name, bytes, does nginx itself serve the blocked vhost for them?]
const HTTP_CASES: [string, string, boolean][] = [
  ['CRLF (the baseline)', `GET / HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, true],
  ['bare LF', `GET / HTTP/1.1\nHost: ${H}\nConnection: close\n\n`, true],
  ['mixed line ends', `GET / HTTP/1.1\r\nHost: ${H}\nConnection: close\r\n\n`, true],
  ['leading empty lines', `\r\n\n\r\nGET / HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, true],
  ['two spaces in the request line', `GET  /  HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, true],
  ['a method nginx takes, llhttp does not', `FOO / HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, true],
  ['lower-case method', `get / HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, false],
  ['upper-case Host name and value', `GET / HTTP/1.1\r\nHOST: BLOCKED.EXAMPLE.TEST\r\nConnection: close\r\n\r\n`, true],
  ['Host with a trailing dot', `GET / HTTP/1.1\r\nHost: ${H}.\r\nConnection: close\r\n\r\n`, true],
  ['Host with a port', `GET / HTTP/1.1\r\nHost: ${H}:80\r\nConnection: close\r\n\r\n`, true],
  ['Host with two ports', `GET / HTTP/1.1\r\nHost: ${H}:80:80\r\nConnection: close\r\n\r\n`, true],
  ['whitespace before the colon', `GET / HTTP/1.1\r\nHost : ${H}\r\nConnection: close\r\n\r\n`, false],
  ['duplicated Host, blocked second', `GET / HTTP/1.1\r\nHost: ok.example.test\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, false],
  ['absolute URI for the blocked host, Host another', `GET http://${H}/ HTTP/1.1\r\nHost: ok.example.test\r\nConnection: close\r\n\r\n`, true],
  ['upper-case scheme and host', `GET HTTP://BLOCKED.EXAMPLE.TEST/ HTTP/1.1\r\nHost: ok.example.test\r\nConnection: close\r\n\r\n`, true],
  ['https scheme on port 80', `GET https://${H}/ HTTP/1.1\r\nHost: ok.example.test\r\nConnection: close\r\n\r\n`, true],
  ['HTTP/1.2', `GET / HTTP/1.2\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, true],
  ['obs-fold Host', `GET / HTTP/1.1\r\nHost:\r\n ${H}\r\nConnection: close\r\n\r\n`, false],
  ['pipelined, only the second blocked', `GET / HTTP/1.1\r\nHost: ok.example.test\r\n\r\nGET / HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`, true],
  ['pipelined, the second in bare LF', `GET / HTTP/1.1\r\nHost: ok.example.test\r\n\r\nGET / HTTP/1.1\nHost: ${H}\nConnection: close\n\n`, true],
  ['CL.TE smuggling', `POST / HTTP/1.1\r\nHost: ok.example.test\r\nContent-Length: 46\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: ${H}\r\n\r\n`, false],
  ['two Content-Lengths', `POST / HTTP/1.1\r\nHost: ok.example.test\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET / HTTP/1.1\r\nHost: ${H}\r\n\r\n`, false],
  [
    'an Upgrade nginx ignores, then a request',
    `GET / HTTP/1.1\r\nHost: ok.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`,
    true,
  ],
  ['HTTP/0.9 (no Host: opaque, refused on port 80)', 'GET /\r\n', false],
  ['h2c prior knowledge (opaque, refused on port 80)', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00', false],
];

t.test('HTTP: every spelling of a request for the blocked host is caught or refused; nginx alone would serve most', async (t) => {
  const table: string[] = [];
  const results = await both(HTTP_CASES.map(([, bytes]) => ({ parts: [bytes] })));
  for (const [i, [name, , nginxServes]] of HTTP_CASES.entries()) {
    const { via, direct } = results[i];
    table.push(
      `${name.padEnd(48)} nginx: ${(statuses(direct.got) || statusLine(direct.got)).padEnd(8)} ${direct.got.includes(BLOCKED) ? BLOCKED : ''}\n${''.padEnd(48)} gateway: ${statuses(via.got) || statusLine(via.got)} ${via.end}`,
    );
    t.notOk(via.got.includes(BLOCKED), `${name}: never served through the gateway`);
    const caught = /HTTP\/1\.1 (400|403|421) /.test(via.got) || via.end === 'reset';
    t.ok(caught, `${name}: caught (403), refused (400/421) or reset: ${statuses(via.got) || via.end}`);
    t.equal(direct.got.includes(BLOCKED), nginxServes, `${name}: nginx alone ${nginxServes ? 'serves' : 'refuses'} it`);
  }
  t.comment(`same bytes, straight to nginx and through the gateway:\n${table.join('\n')}`);
  // the pipelined ones: the first request still gets its answer
  const p = await raw(topo.client, NGINX_IP, 80, [HTTP_CASES.find((c) => c[0].startsWith('pipelined, only'))![1]]);
  t.equal(statuses(p.got), '200,403', 'the allowed request is answered, then the blocked one refused');
});

t.test('slow clients: a request line sent after the sniff budget is unknown, and the fail-closed rule resets it', async (t) => {
  const parts = ['GE', `T / HTTP/1.1\r\nHost: ${H}\r\nConnection: close\r\n\r\n`];
  const [{ via, direct }] = await both([{ parts, gapMs: 700 }]);
  t.ok(direct.got.includes(BLOCKED), 'nginx waits and serves it');
  t.equal(via.end, 'reset', 'the gateway resets it');
  t.notOk(via.got.includes(BLOCKED));
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"rule":"fail-closed"') && l.includes('"proto":"unknown"')));
  t.match(line, { action: 'reject', end: 'rejected' });
  // headers dribbled slowly after a complete request line: HTTP, read by the relay, the rule applies
  const slowHeaders = await raw(topo.client, NGINX_IP, 80, ['GET / HTTP/1.1\r\n', `Host: ${H}\r\n`, 'Connection: close\r\n\r\n'], { gapMs: 400 });
  t.match(slowHeaders.got, /^HTTP\/1\.1 403 /, 'slow headers: still 403');
});

t.test('header rules hold whatever the spelling: set-header and remove-header on bare LF and upper case', async (t) => {
  const app = await raw(topo.client, APP_IP, 80, ['GET / HTTP/1.1\nhost: APP.example.test\nAuthorization: mine\nConnection: close\n\n']);
  t.match(app.got, new RegExp(`APP host=\\[app\\.example\\.test\\] auth=\\[${TOKEN}\\]`), "the secret replaced the client's own, bare LF and all");
  const strip = await raw(topo.client, NGINX_IP, 80, ['GET / HTTP/1.1\nHost: strip.example.test\nX-INTERNAL: yes\nx-internal: again\nConnection: close\n\n']);
  t.match(strip.got, /x-internal=\[\]/, 'every X-Internal removed');
});

t.test('a header rule on a stream it cannot read (h2c, a slow request line) resets it, never passes it unedited', async (t) => {
  const [h2c, slow, plain] = await rawMany(topo.client, [
    { host: NGINX_IP, port: 8081, parts: ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'] },
    { host: NGINX_IP, port: 8081, parts: ['GE', 'T / HTTP/1.1\r\nHost: x\r\nX-Internal: yes\r\nConnection: close\r\n\r\n'], gapMs: 700 },
    { host: NGINX_IP, port: 8081, parts: ['GET / HTTP/1.1\nHost: x\nX-INTERNAL: yes\nConnection: close\n\n'] },
  ]);
  t.equal(h2c.end, 'reset', 'h2c prior knowledge: reset');
  t.equal(slow.end, 'reset', 'unknown: reset');
  t.match(plain.got, /^HTTP\/1\.1 200 [^]*PLAIN host=\[x\] auth=\[\] x-internal=\[\]/, 'readable HTTP: the header removed');
});

t.test('TLS: a hello for the blocked name is reset however it is written; nginx answers each one', async (t) => {
  const hello = await captureClientHello({ servername: H });
  const body = hello.subarray(5);
  const rec = (b: Buffer, minor = 1) => Buffer.concat([Buffer.from([22, 3, minor, b.length >> 8, b.length & 0xff]), b]);
  const mut = (f: (c: Buffer) => void) => {
    const c = Buffer.from(hello);
    f(c);
    return c;
  };
  const at = body.indexOf(Buffer.from(H));
  const cases: [string, Buffer[], number?][] = [
    ['one record', [hello]],
    ['record version 3.0', [mut((c) => (c[2] = 0))]],
    ['legacy_version 3.9', [mut((c) => (c[10] = 9))]],
    ['three records, the name split between two', [Buffer.concat([rec(body.subarray(0, at + 4)), rec(body.subarray(at + 4, at + 9)), rec(body.subarray(at + 9))])]],
    ['an empty record first', [Buffer.concat([rec(Buffer.alloc(0)), hello])]],
    ['split across TCP segments', [hello.subarray(0, 50), hello.subarray(50, 120), hello.subarray(120)], 50],
    ['upper case and a trailing dot', [await captureClientHello({ servername: 'BLOCKED.EXAMPLE.TEST.' })]],
    ['sent slowly (past the sniff budget: unknown, fail-closed)', [hello.subarray(0, 30), hello.subarray(30)], 700],
  ];
  const results = await both(cases.map(([, parts, gapMs]) => ({ parts, gapMs, port: 443 })));
  for (const [i, [name]] of cases.entries()) {
    const { via, direct } = results[i];
    t.equal(direct.got.slice(0, 1), '\x16', `${name}: nginx answers with a handshake record`);
    t.equal(via.end, 'reset', `${name}: reset by the gateway`);
    t.equal(via.got.length, 0, `${name}: not a byte from the server`);
  }
  const ok = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', '--cacert', `${topo.tmp}/ca.pem`, 'https://ok.example.test/'], { allowFail: true });
  t.match(ok.stdout, /^TLS-OK host=\[ok\.example\.test\]/, ok.stderr);
});

t.test('QUIC: the SNI of Initial packets decides the flow; what cannot be read on 443 is refused', async (t) => {
  const send = (dgrams: Buffer[]) => raw(topo.client, NGINX_IP, 443, dgrams, { proto: 'udp', gapMs: 20, waitMs: 1500 });
  const blocked = await send(initialDatagrams(await clientHelloMessage(H)));
  t.equal(blocked.end, 'refused', 'blocked name: port unreachable');
  t.equal(blocked.answers, 0);
  const ok = await send(initialDatagrams(await clientHelloMessage('ok.example.test')));
  t.equal(ok.end, 'timeout', `allowed name: relayed ${JSON.stringify(ok)}`);
  t.ok((ok.answers ?? 0) >= 2, `echoed (${ok.answers})`);
  const spanning = await send(initialDatagrams(await clientHelloMessage(H, ['h3'], 2600), { reverse: true }));
  t.equal(spanning.end, 'refused', 'a hello over three datagrams, frames reordered: read, refused');
  const spanningOk = await send(initialDatagrams(await clientHelloMessage('ok.example.test', ['h3'], 2600), { reverse: true }));
  t.ok((spanningOk.answers ?? 0) >= 3, `three datagrams held until read, then all relayed (${spanningOk.answers})`);
  const v2 = await send(initialDatagrams(await clientHelloMessage(H), { version: QUIC_V2 }));
  t.equal(v2.end, 'refused', 'QUIC v2 too');
  const garbage = await send([Buffer.alloc(1200, 0x42)]);
  t.equal(garbage.end, 'refused', 'UDP 443 that is no QUIC: unknown, refused by the fail-closed rule');
  t.comment(
    gw
      .stdoutLines()
      .filter((l) => l.includes('"proto":"quic"') || l.includes('"proto":"unknown"') || l.includes(':443"'))
      .join('\n'),
  );
  const line = JSON.parse(await gw.waitForLine((l) => l.includes('"proto":"quic"') && l.includes(`"sni":"${H}"`)));
  t.match(line, { action: 'reject', rule: 'rules[0]' });
});

t.test('a secret header goes only where its name really is (issue 20, item 4)', async (t) => {
  const own = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', 'http://app.example.test/'], { allowFail: true });
  t.match(own.stdout, new RegExp(`^APP host=\\[app\\.example\\.test\\] auth=\\[${TOKEN}\\]`), own.stderr);
  const elsewhere = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', '-w', '\\n%{http_code}', '-H', 'Host: app.example.test', `http://${OTHER_IP}/`], {
    allowFail: true,
  });
  t.match(elsewhere.stdout, /\n403$/, 'another address with Host: app.example.test: refused');
  t.notOk(elsewhere.stdout.includes('s3cret'), 'the secret never went there');
  t.match(elsewhere.stdout, /not one of its addresses/);
  await gw.waitForLine((l) => l.includes('secret withheld'));
  // through the explicit proxy the Host is the URI's authority: no name to inject for
  const viaProxy = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', '-x', 'http://127.0.0.1:8080', '-H', 'Host: app.example.test', `http://${OTHER_IP}/`], {
    allowFail: true,
  });
  t.match(viaProxy.stdout, /^OTHER host=\[203\.0\.113\.8\] auth=\[\]/, "the explicit proxy sends the URI's authority as Host, without the secret");
  const blockedViaProxy = await nsExec(
    topo.client,
    ['curl', '-sS', '--max-time', '10', '-x', 'http://127.0.0.1:8080', '-H', 'Host: ok.example.test', '-w', '\\n%{http_code}', `http://${H}/`],
    { allowFail: true },
  );
  t.match(blockedViaProxy.stdout, /\n403$/, 'absolute URI for the blocked name with another Host: 403');
  const byIp = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', '-x', 'http://127.0.0.1:8080', '-H', `Host: ${H}`, `http://${NGINX_IP}/`], { allowFail: true });
  t.notOk(byIp.stdout.includes(BLOCKED), 'absolute URI by address with Host: blocked: nginx answers for the address, not the blocked vhost');
});

t.test('upstream_tls: the program speaks plain HTTP, the gateway HTTPS with the certificate checked against the name', async (t) => {
  const r = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', 'http://tlsapp.example.test/'], { allowFail: true });
  t.match(r.stdout, new RegExp(`^TLS-APP host=\\[tlsapp\\.example\\.test\\] auth=\\[${TOKEN}\\] x-internal=\\[\\] https=\\[on\\]`), r.stderr);
  const bad = await nsExec(topo.client, ['curl', '-sS', '--max-time', '10', '-w', '\\n%{http_code}', 'http://tlsbad.example.test/'], { allowFail: true });
  t.match(bad.stdout, /\n502$/, 'a certificate for another name: 502, nothing sent');
  t.match(bad.stdout, /tlsbad\.example\.test/);
  t.notOk(gw.stdoutLines().join('\n').includes('s3cret'), 'the secret is never logged');
});

t.test('normal exit', async (t) => {
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0, 'exit 0 after a clean stop on SIGTERM');
});
