// Server-first protocols through the TUN, byte-exact, with real programs: a
// greeting service (socat writes 3,900 bytes on accept, then closes) 200 times
// over IPv4 and 200 over IPv6, and sshd (50 `ssh host true`, a 50 MB scp each
// way), over the kernel path first, then through route-all, per-host (a name
// mapped to fake IPs) and `tunsteer run -- CMD`.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { nsExec } from '../helpers/netns.js';
import { DNS_IP, NGINX_IP, NGINX_IP6, addIpv6, clientResolvConf, makeTopology, startDnsPeer, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';
import { startGreeting, startSshd } from '../helpers/real/servers.js';
import { greetingChecks, sshChecks, type Exec } from '../helpers/real/server-first-checks.js';

t.setTimeout(1_200_000);
const topo = await makeTopology(t);
await addIpv6(topo);
await startDnsPeer(t, topo);
await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\noptions timeout:2\n`);
const addrs = [NGINX_IP, NGINX_IP6];
const sha = await startGreeting(t, topo.servers, topo.tmp, addrs);
const sshd = await startSshd(t, topo.servers, topo.tmp, addrs);
const inClient: Exec = (argv, timeoutMs) => nsExec(topo.client, argv, { allowFail: true, timeoutMs });
const real = { v4: NGINX_IP, v6: NGINX_IP6 };

t.test('kernel path (no gateway): the same checks hold', async (t) => {
  await greetingChecks(t, inClient, real, sha, 50);
  await sshChecks(t, inClient, sshd, NGINX_IP, { sessions: 5, mb: 0 });
});

async function withGateway(t: Test, args: string[], body: () => Promise<void>): Promise<void> {
  const dir = join(topo.tmp, `state-${args[1]}`);
  const gw = startGateway(t, topo.client, [...args, '--state-dir', dir, '--tun-name', 'tsf0']);
  await waitForGateway(topo.client, dir, gw);
  await body();
  gw.kill('SIGTERM');
  await gw.exited();
}

t.test('route-all', (t) =>
  withGateway(t, ['--mode', 'route-all'], async () => {
    await greetingChecks(t, inClient, real, sha);
    await sshChecks(t, inClient, sshd, NGINX_IP);
    await sshChecks(t, inClient, sshd, NGINX_IP6, { sessions: 10, mb: 0 });
  }),
);

t.test('per-host: to the name, through its fake IPs', (t) =>
  withGateway(t, ['--mode', 'per-host', '--host', 'dual.example.com'], async () => {
    const lookup = async (db: string) => (await nsExec(topo.client, ['getent', db, 'dual.example.com'])).stdout.split(/\s+/)[0];
    const fake = { v4: await lookup('ahostsv4'), v6: await lookup('ahostsv6') };
    t.match(fake.v4, /^198\.1[89]\./);
    t.match(fake.v6, /^fc00:/);
    await greetingChecks(t, inClient, fake, sha);
    await sshChecks(t, inClient, sshd, 'dual.example.com');
  }),
);

t.test('tunsteer run -- CMD', async (t) => {
  const underRun: Exec = (argv, timeoutMs) => nsExec(topo.client, tunsteerArgv(['run', '--', ...argv]), { allowFail: true, timeoutMs });
  await greetingChecks(t, underRun, real, sha);
  await sshChecks(t, underRun, sshd, NGINX_IP);
});
