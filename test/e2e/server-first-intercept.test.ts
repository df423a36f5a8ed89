// Server-first protocols through redirect and tproxy on a router, byte-exact,
// with real programs: the greeting service 200 times per family and sshd (50
// `ssh host true`, a 50 MB scp each way) from a LAN client.
import t from 'tap';
import { join } from 'node:path';
import { nsExec } from '../helpers/netns.js';
import { makeTopology, routerWithLan, startGateway, waitForGateway } from '../helpers/topology.js';
import { startGreeting, startSshd } from '../helpers/real/servers.js';
import { greetingChecks, sshChecks, type Exec } from '../helpers/real/server-first-checks.js';

t.setTimeout(1_200_000);
const topo = await makeTopology(t);
const { router, lan } = await routerWithLan(t, topo);
const hosts = { v4: '203.0.113.30', v6: '2001:db8:3::10' };
const sha = await startGreeting(t, topo.servers, topo.tmp, [hosts.v4, hosts.v6]);
const sshd = await startSshd(t, topo.servers, topo.tmp, [hosts.v4, hosts.v6]);
const inLan: Exec = (argv, timeoutMs) => nsExec(lan, argv, { allowFail: true, timeoutMs });

for (const mode of ['redirect', 'tproxy']) {
  t.test(mode, async (t) => {
    const dir = join(topo.tmp, `state-${mode}`);
    const gw = startGateway(t, router, ['--mode', mode, '--state-dir', dir]);
    await waitForGateway(router, dir, gw);
    await greetingChecks(t, inLan, hosts, sha);
    await sshChecks(t, inLan, sshd, hosts.v4);
    await sshChecks(t, inLan, sshd, hosts.v6, { sessions: 10, mb: 0 });
    gw.kill('SIGTERM');
    await gw.exited();
  });
}
