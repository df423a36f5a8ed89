// UDP datagrams larger than the TUN's MTU (issue 14 item 5): echoes of 1,473,
// 3,000, 8,000 and 65,000 bytes through route-all at --mtu 1500 (the client's
// kernel fragments into the TUN, the stack reassembles; the replies leave the
// stack in fragments the client's kernel reassembles) and at --mtu 65520
// (no fragments in the TUN; the veth to the servers fragments), IPv4 and
// IPv6, each compared with the same echoes over the kernel path (the oracle).
import t from 'tap';
import { join } from 'node:path';
import { nsExec, spawnNodeInNs } from '../helpers/netns.js';
import { PEER_IP, ROOT, addIpv6, makeTopology, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';

t.setTimeout(600_000);
const PORT = 7011;
const PEER_IP6 = '2001:db8:10::12';
const SIZES = ['1473', '3000', '8000', '65000'];
const topo = await makeTopology(t);
await addIpv6(topo);
await nsExec(topo.servers, ['ip', '-6', 'addr', 'add', `${PEER_IP6}/128`, 'dev', 'lo', 'nodad']);
for (const host of [PEER_IP, PEER_IP6]) {
  const echo = spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/udp-peer.ts'), ['server', host, String(PORT)]);
  await echo.waitForLine((l) => l.includes('listening'));
}

/** The outcome per size of one echo each, from the client namespace. */
async function echoes(host: string): Promise<Record<string, string>> {
  const r = await nsExec(topo.client, [process.execPath, '--import', 'tsx', join(ROOT, 'test/helpers/udp-sizes-peer.ts'), host, String(PORT), ...SIZES], { timeoutMs: 120_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
}

const kernel = { 4: await echoes(PEER_IP), 6: await echoes(PEER_IP6) };
const allOk = Object.fromEntries(SIZES.map((s) => [s, 'ok']));

t.test('over the kernel path every size is echoed (the oracle)', async (t) => {
  t.same(kernel[4], allOk, 'IPv4');
  t.same(kernel[6], allOk, 'IPv6');
});

for (const mtu of [1500, 65520]) {
  t.test(`route-all --mtu ${mtu}: the same as over the kernel path`, async (t) => {
    const stateDir = join(topo.tmp, `state-${mtu}`);
    const gw = startGateway(t, topo.client, ['--mode', 'route-all', '--state-dir', stateDir, '--tun-name', `tsf${mtu === 1500 ? 0 : 1}`, '--mtu', String(mtu)]);
    await waitForGateway(topo.client, stateDir, gw);
    const status = async () => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', stateDir, '--json']))).stdout).status;
    for (const family of [4, 6] as const) {
      const got = await echoes(family === 4 ? PEER_IP : PEER_IP6);
      t.same(got, kernel[family], `IPv${family}: ${JSON.stringify(got)}`);
    }
    // the status is published once a second: wait for the one that counts the last echo (at most 5 s)
    let s = await status();
    for (let i = 0; i < 25 && mtu === 1500 && (s.counters.datagramsReassembled < 6 || s.counters.packetsFragmented < 6); i++) {
      await new Promise((r) => setTimeout(r, 200));
      s = await status();
    }
    t.comment(
      `fragments in ${s.counters.fragmentsIn}, datagrams reassembled ${s.counters.datagramsReassembled}, packets fragmented ${s.counters.packetsFragmented} (${s.counters.fragmentsOut} fragments); drops ${JSON.stringify(Object.fromEntries(Object.entries(s.drops).filter(([, v]) => (v as number) > 0)))}`,
    );
    if (mtu === 1500) {
      t.ok(s.counters.datagramsReassembled >= 6, 'the stack reassembled what the client fragmented');
      t.ok(s.counters.packetsFragmented >= 6, 'and fragmented the replies');
    } else {
      t.equal(s.counters.fragmentsIn, 0, 'no fragment in a 65520-byte TUN');
    }
    t.equal(s.drops.udp_too_big ?? 0, 0, 'no reply dropped for its size');
    gw.kill('SIGTERM');
    t.equal((await gw.exited()).code, 0, 'a clean stop after SIGTERM exits 0');
  });
}
