// How soon new connections work after the network changes under the gateway
// (issue 21), against the kernel path in the same run. A probe in the client
// namespace opens a connection every 20 ms and notes when each ended and
// where it came from; the figure is the time from the change (the last `ip`
// command of it returning) to the first connection that works from the new
// uplink. Median and worst of RUNS changes per case, in namespaces of its own.
//   node --import tsx bench/uplink-change.ts [--quick]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { nsExec, spawnNodeInNs } from '../test/helpers/netns.js';
import { startGateway, waitForGateway, type Topology } from '../test/helpers/topology.js';
import { CHANGE_PEER, PEER, PEER6, PEER_PORT, movingNetwork } from '../test/helpers/moving-network.js';
import { median, runBench, teardownHost } from './bench-kit.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const RUNS = values.quick ? 2 : 7;
const PORT = PEER_PORT;
const HELPER = CHANGE_PEER;
const { host, cleanup } = teardownHost();
const sh = (ns: string, cmd: string) => nsExec(ns, ['sh', '-c', cmd]);

interface Case {
  name: string;
  target: string;
  /** Makes the change; the probe's first success from `from` after it returns is the figure. */
  change(ifs: string[]): string;
  /** Puts it back (not measured). */
  back(ifs: string[]): string;
  /** The source address a working connection has after the change. */
  from: string;
}

const CASES: Case[] = [
  {
    name: 'new address (DHCP: old removed, new added, default route re-added)',
    target: PEER,
    change: ([a]) => `ip addr del 192.0.2.1/24 dev ${a} && ip addr add 192.0.2.5/24 dev ${a} && ip route add default via 192.0.2.2`,
    back: ([a]) => `ip addr del 192.0.2.5/24 dev ${a} && ip addr add 192.0.2.1/24 dev ${a} && ip route add default via 192.0.2.2`,
    from: '192.0.2.5',
  },
  {
    name: 'default route to another gateway on another interface',
    target: PEER,
    change: ([, b]) => `ip route replace default via 198.51.100.2 dev ${b}`,
    back: ([a]) => `ip route replace default via 192.0.2.2 dev ${a}`,
    from: '198.51.100.1',
  },
  {
    name: 'uplink back after an outage (link up, default route added)',
    target: PEER,
    change: ([a]) => `ip link set ${a} up && ip route add default via 192.0.2.2`,
    back: ([a]) => `ip link set ${a} down`,
    from: '192.0.2.1',
  },
  {
    name: 'IPv6 appears (address and default route added)',
    target: PEER6,
    change: ([a]) => `ip -6 addr add 2001:db8:1::1/64 dev ${a} nodad && ip -6 route add default via 2001:db8:1::2`,
    back: ([a]) => `ip -6 route del default via 2001:db8:1::2 && ip -6 addr del 2001:db8:1::1/64 dev ${a}`,
    from: '2001:db8:1::1',
  },
];

async function measure(topo: Topology, ifs: string[], c: Case): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const probe = spawnNodeInNs(host, topo.client, HELPER, ['probe', c.target, String(PORT), '6000']);
    await probe.waitForLine((l) => l.includes('"t"'), 20_000);
    await new Promise((r) => setTimeout(r, 300));
    await sh(topo.client, c.change(ifs));
    const changed = Date.now();
    await probe.exited();
    const first = probe
      .stdoutLines()
      .map((l) => JSON.parse(l) as { t: number; ok: boolean; from?: string })
      .find((r) => r.t >= changed && r.ok && r.from === c.from);
    out.push(first ? first.t - changed : NaN);
    await sh(topo.client, c.back(ifs));
    await new Promise((r) => setTimeout(r, 500)); // the gateway follows the way back too
  }
  return out;
}

async function main() {
  const { topo, if1: a, if2: b } = await movingNetwork(host);
  const ifs = [a, b];
  const rows: string[] = [];
  const fmt = (xs: number[]) => `${median(xs)} | ${Math.max(...xs)}`;
  for (const gateway of [false, true]) {
    let gw = null;
    if (gateway) {
      const stateDir = join(topo.tmp, 'state');
      gw = startGateway(host, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsb0']);
      await waitForGateway(topo.client, stateDir, gw);
    }
    for (const c of CASES) {
      // the outage case starts from a link that is down
      if (c.name.startsWith('uplink back')) await sh(topo.client, c.back(ifs));
      if (gateway) await new Promise((r) => setTimeout(r, 500));
      const ms = await measure(topo, ifs, c);
      if (c.name.startsWith('uplink back')) await sh(topo.client, `ip link set ${a} up && ip route replace default via 192.0.2.2`);
      rows.push(`| ${c.name} | ${gateway ? 'tunsteer' : 'kernel'} | ${fmt(ms)} | ${ms.join(', ')} |`);
      console.error(rows.at(-1));
    }
    if (gw) {
      gw.kill('SIGTERM');
      await gw.exited();
    }
  }
  console.log(
    `New connections after a network change: ms from the change to the first connection that works from the new uplink; ${RUNS} changes each; ${new Date().toISOString()}; node ${process.version}\n`,
  );
  console.log('| change | path | median ms | worst ms | each |\n| --- | --- | ---: | ---: | --- |');
  for (const r of rows) console.log(r);
}

runBench(main, cleanup);
