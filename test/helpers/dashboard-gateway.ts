// What the browser tests of the control API share: a route-all gateway with
// the control API on the client namespace's loopback (secret from a file),
// web.example served by nginx with a 60 MB file to download slowly, and
// Debian's chromium run inside the client namespace (a wrapper execs it
// there; playwright-core speaks to it over the pipes it inherits).
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { nsExec, snapshotRouting, type NsChild, type TeardownHost } from './netns.js';
import { DNS_IP, NGINX_IP, clientResolvConf, makeTopology, startDnsPeer, startGateway, startNginx, waitForGateway, type Topology } from './topology.js';

const CHROMIUM = '/usr/bin/chromium';

export interface DashboardGateway {
  topo: Topology;
  gw: NsChild;
  /** The client namespace's routing before the gateway started. */
  before: { text: string };
}

/** rules: YAML list items, one per line, after `rules:`. */
export async function dashboardGateway(t: TeardownHost, o: { port: number; secret: string; tun: string; rules: string[] }): Promise<DashboardGateway> {
  const topo = await makeTopology(t);
  await Promise.all([startNginx(t, topo), startDnsPeer(t, topo, { 'web.example': [NGINX_IP] })]);
  await nsExec(topo.servers, ['sh', '-c', `head -c 60M /dev/zero > ${topo.www}/60m.bin`]);
  await clientResolvConf(t, topo.client, `nameserver ${DNS_IP}\n`);
  const before = await snapshotRouting(topo.client);
  const secretFile = join(topo.tmp, 'control.secret');
  writeFileSync(secretFile, o.secret, { mode: 0o600 });
  const cfg = join(topo.tmp, 'tunsteer.yaml');
  writeFileSync(
    cfg,
    `mode: route-all
tun: { name: ${o.tun} }
hosts: [web.example]
control: { address: "127.0.0.1:${o.port}", secret_file: ${secretFile} }
rules:
${o.rules.map((r) => `  - ${r}`).join('\n')}
`,
  );
  const dir = join(topo.tmp, 'state');
  const gw = startGateway(t, topo.client, ['--config', cfg, '--state-dir', dir]);
  await waitForGateway(topo.client, dir, gw, 60_000);
  return { topo, gw, before };
}

/** Headless chromium in the namespace, closed at teardown. */
export async function chromiumIn(t: TeardownHost, topo: Topology): Promise<Browser> {
  const wrapper = join(topo.tmp, 'chromium-in-ns.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${topo.client} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const browser = await chromium.launch({
    executablePath: wrapper,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  t.teardown(() => browser.close());
  return browser;
}
