// Real clients and servers through route-all, byte-exact, IPv4 and IPv6: an
// SMTP-style dialogue (the server greets, then answers each line), TLS 1.3 with
// HTTP/2 from nginx to curl (a self-signed certificate made here, verified),
// 100 MB; a WebSocket echo (the ws package). Each also over the kernel path
// first, so a failure is the gateway's.
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec } from '../helpers/netns.js';
import { NGINX_IP, NGINX_IP6, ROOT, addIpv6, makeTopology, startGateway, waitForGateway } from '../helpers/topology.js';
import { DIALOGUE_PORT, TLS_PORT, WS_PORT, fileSha, randomFile, startDialogue, startTlsNginx, startWsEcho } from '../helpers/real/servers.js';

t.setTimeout(900_000);
const topo = await makeTopology(t);
await addIpv6(topo);
const addrs = [NGINX_IP, NGINX_IP6];
const KERNEL_IP = '203.0.113.40';
const KERNEL_IP6 = '2001:db8:10::40';
await nsExec(topo.servers, ['sh', '-c', `ip addr add ${KERNEL_IP}/32 dev lo && ip -6 addr add ${KERNEL_IP6}/128 dev lo nodad`]);
const all = [...addrs, KERNEL_IP, KERNEL_IP6];
await startDialogue(t, topo.servers, all);
await startWsEcho(t, topo.servers, all);
const bigSha = randomFile(join(topo.www, 'big.bin'), 100);
const cert = await startTlsNginx(t, topo.servers, topo.tmp, topo.www, all);
const dir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', dir, '--tun-name', 'tsr0', '--exclude', `${KERNEL_IP}/32`, '--exclude', `${KERNEL_IP6}/128`]);
await waitForGateway(topo.client, dir, gw);
const node = (script: string, args: string[]) => nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, script), ...args], { allowFail: true, timeoutMs: 120_000 });
const url = (host: string) => (host.includes(':') ? `[${host}]` : host);
const paths = [
  ['kernel path', KERNEL_IP, KERNEL_IP6],
  ['route-all', NGINX_IP, NGINX_IP6],
] as const;

for (const [path, v4, v6] of paths) {
  t.test(`${path}: SMTP-style dialogue, 40 rounds, every answer byte-exact`, async (t) => {
    for (const host of [v4, v6]) {
      const r = await node('test/helpers/real/dialogue-peer.ts', ['client', host, String(DIALOGUE_PORT), '40']);
      t.equal(r.stdout.trim(), JSON.stringify({ ok: true, rounds: 40 }), `${host}: ${r.stdout}${r.stderr.slice(-300)}`);
    }
  });

  t.test(`${path}: TLS 1.3 + HTTP/2 from nginx to curl, 100 MB byte-exact`, async (t) => {
    for (const host of [v4, v6]) {
      const file = join(topo.tmp, 'got.bin');
      const r = await nsExec(
        topo.client,
        [
          'curl',
          '-sS',
          '--http2',
          '--tlsv1.3',
          '--cacert',
          cert,
          '--max-time',
          '120',
          '-o',
          file,
          '-w',
          '%{http_version} %{ssl_verify_result}',
          `https://${url(host)}:${TLS_PORT}/big.bin`,
        ],
        { allowFail: true, timeoutMs: 180_000 },
      );
      t.equal(r.code, 0, r.stderr);
      t.equal(r.stdout, '2 0', `${host}: HTTP/2, certificate verified`);
      t.equal(fileSha(file), bigSha, `${host}: 100 MB, sha256 equal`);
      rmSync(file, { force: true });
    }
  });

  t.test(`${path}: WebSocket echo, text and binary to 1 MB, close 1000`, async (t) => {
    for (const host of [v4, v6]) {
      const r = await node('test/helpers/real/ws-peer.ts', ['client', `ws://${url(host)}:${WS_PORT}/`, '60']);
      t.equal(r.stdout.trim(), JSON.stringify({ ok: true, messages: 60 }), `${host}: ${r.stdout}${r.stderr.slice(-300)}`);
    }
  });
}

t.test('the gateway carried the route-all connections (its log names them)', async (t) => {
  const lines = gw.stdoutLines().filter((l) => l.includes('"msg":"conn"'));
  for (const port of [DIALOGUE_PORT, TLS_PORT, WS_PORT]) {
    t.ok(
      lines.some((l) => l.includes(`${NGINX_IP}:${port}`)),
      `IPv4 :${port}`,
    );
    t.ok(
      lines.some((l) => l.includes(`[${NGINX_IP6}]:${port}`)),
      `IPv6 :${port}`,
    );
  }
  t.notOk(
    lines.some((l) => l.includes(KERNEL_IP)),
    "and none of the kernel path's",
  );
});
