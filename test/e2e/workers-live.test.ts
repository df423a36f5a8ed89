// Operating a gateway with stack workers (--workers 2) live: whatever changes
// while it runs reaches every worker, and whatever is asked of it answers for
// every worker. Route-all, the data plane as nobody, echo servers behind it;
// each check makes enough connections (each from its own source port) that
// the kernel steers some to each queue, and reads which worker relayed each
// from its log line ("worker": 0 or 1):
//  - a reload (PUT /configs, then `tunsteer reload`) flips a rule, and new
//    connections on both queues follow it; each worker's counters move;
//  - a reload one worker cannot build is refused naming that worker, and no
//    worker (nor the data plane's thread) changes;
//  - a rule-set file replaced on disk (the data plane's thread watches it)
//    reaches both workers;
//  - a rule on who made the connection (user) holds on both workers;
//  - the control API lists the connections of both workers, closes one on
//    worker 1 by its id (that client alone is reset), and counts the rules'
//    hits over both.
import t from 'tap';
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, snapshotRouting, spawnNodeInNs } from '../helpers/netns.js';
import { PEER_IP, ROOT, makeTopology, startGateway, tunsteerArgv, waitForGateway } from '../helpers/topology.js';
import { controlClient } from '../helpers/control-client.js';

t.setTimeout(600_000);
const WORKERS = 2;
const PORT = 9093;
/** Connections per check: with two queues, the chance that all land on one is 2 in 2^24. */
const BURST = 24;

const topo = await makeTopology(t);
const ports = [7000, 7001, 7002, 7003];
const servers = ports.map((p) => spawnNodeInNs(t, topo.servers, join(ROOT, 'test/helpers/tcp-peer.ts'), ['server', PEER_IP, String(p)]));
await Promise.all(servers.map((s) => s.waitForLine((l) => l.includes('listening'))));
const before = await snapshotRouting(topo.client);

// the data plane runs as nobody: it reads the rule-set (and the test's trigger) as nobody
chmodSync(topo.tmp, 0o755);
const setFile = join(topo.tmp, 'steer.txt');
const writeSet = (body: string) => {
  writeFileSync(`${setFile}.new`, body, { mode: 0o644 });
  renameSync(`${setFile}.new`, setFile);
};
writeSet(`# rejected on 7002\n${PEER_IP}/32\n`);
const prepareTrigger = join(topo.tmp, 'refuse-reload');
const cfg = join(topo.tmp, 'tunsteer.yaml');
const config = (flip: 'direct' | 'reject') => `mode: route-all
tun: { name: tsv0 }
control: "127.0.0.1:${PORT}"
rule_sets:
  steer: ${setFile}
rules:
  - { name: flip, cidr: ${PEER_IP}/32, port: 7000, action: ${flip} }
  - { name: steer, port: 7002, rule_set: steer, action: reject }
  - { name: who, port: 7003, user: daemon, action: reject }
`;
writeFileSync(cfg, config('direct'));
const dir = join(topo.tmp, 'state');
const gw = startGateway(t, topo.client, ['--config', cfg, '--state-dir', dir, '--workers', String(WORKERS)], {
  env: { ...process.env, TUNSTEER_TEST_WORKER_PREPARE_FAIL: `1:${prepareTrigger}` },
});
await waitForGateway(topo.client, dir, gw, 90_000);
const api = await controlClient(t, topo.client, topo.tmp, PORT);
const status = async (): Promise<Record<string, number>> => JSON.parse((await nsExec(topo.client, tunsteerArgv(['status', '--state-dir', dir, '--json']))).stdout).status.counters;

type Line = { msg?: string; dst?: string; worker?: number; rule?: string; action?: string; end?: string; owner?: { uid: number } | null };
const lines = (from = 0): Line[] =>
  gw
    .stdoutLines()
    .slice(from)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Line];
      } catch {
        return [];
      }
    });

/**
 * BURST connections to the port at once, each an ECHO exchange (socat): how
 * many echoed, and the log lines of those connections (waited for: a line is
 * written when its connection ends), with the worker that relayed each.
 */
async function burst(port: number, as?: string): Promise<{ echoed: number; conns: Line[] }> {
  const from = gw.stdoutLines().length;
  const user = as ? `setpriv --reuid=${as} --regid=${as} --clear-groups ` : '';
  const one = `(printf 'ECHO\\nprobe\\n' | ${user}socat -T20 - TCP:${PEER_IP}:${port},connect-timeout=20 2>/dev/null | grep -q probe && echo echoed || echo refused)`;
  const r = await nsExec(topo.client, ['sh', '-c', `for i in $(seq ${BURST}); do ${one} & done; wait`], { timeoutMs: 90_000, allowFail: true });
  const echoed = r.stdout.split('\n').filter((l) => l === 'echoed').length;
  const mine = () => lines(from).filter((c) => c.msg === 'conn' && c.dst === `${PEER_IP}:${port}`);
  for (const until = Date.now() + 15_000; mine().length < BURST && Date.now() < until;) await new Promise((r) => setTimeout(r, 100));
  return { echoed, conns: mine() };
}

/** Which workers relayed these connections, and how each was decided ("flip reject": rule and action). */
const byWorker = (conns: Line[]) => [...new Set(conns.map((c) => c.worker))].sort();
const decisions = (conns: Line[]) => [...new Set(conns.map((c) => `${c.rule} ${c.action}`))];

t.test(`${WORKERS} workers, one per queue`, async (t) => {
  const c = await status();
  t.equal(c.workers, WORKERS);
  t.equal(c.worker_restarts, 0);
});

t.test('a reload flips a rule: new connections on both queues follow it', async (t) => {
  const a = await burst(7000);
  t.equal(a.echoed, BURST, 'before: every connection to 7000 goes through');
  t.same(byWorker(a.conns), [0, 1], 'on both workers');
  t.same(decisions(a.conns), ['flip direct']);
  // each worker's status comes once a second, then the status file: read it twice to be sure it moved
  await new Promise((r) => setTimeout(r, 2500));
  const c0 = await status();

  writeFileSync(cfg, config('reject'));
  const r = await api.request('PUT', '/configs');
  t.equal(r.status, 200, `PUT /configs: ${r.text}`);
  t.ok(r.json().applied.includes('rules'), 'the rules changed');
  const b = await burst(7000);
  t.equal(b.echoed, 0, 'after: no connection to 7000 goes through');
  t.same(byWorker(b.conns), [0, 1], 'on both workers');
  t.same(decisions(b.conns), ['flip reject'], 'every worker decided by the new rule');
  await new Promise((r) => setTimeout(r, 2500));
  const c1 = await status();
  for (let w = 0; w < WORKERS; w++)
    t.ok(c1[`worker_${w}_proxy_total`] > c0[`worker_${w}_proxy_total`], `worker ${w}'s connections counted (${c0[`worker_${w}_proxy_total`]} -> ${c1[`worker_${w}_proxy_total`]})`);
  t.ok(c1.proxy_rejected >= c0.proxy_rejected + BURST, 'the rejections summed over the workers');

  writeFileSync(cfg, config('direct'));
  const cli = await nsExec(topo.client, tunsteerArgv(['reload', '--state-dir', dir]), { allowFail: true, timeoutMs: 60_000 });
  t.equal(cli.code, 0, `tunsteer reload: ${cli.stdout}${cli.stderr}`);
  const c = await burst(7000);
  t.equal(c.echoed, BURST, 'back: every connection goes through again');
  t.same(byWorker(c.conns), [0, 1]);
  t.same(decisions(c.conns), ['flip direct']);
});

t.test('a reload one worker cannot build is refused, naming it; nothing changes anywhere', async (t) => {
  writeFileSync(prepareTrigger, '', { mode: 0o644 });
  t.teardown(() => rmSync(prepareTrigger, { force: true }));
  writeFileSync(cfg, config('reject'));
  const r = await api.request('PUT', '/configs');
  t.equal(r.status, 500, 'refused');
  t.match(r.json(), { ok: false, refused: 'failed' });
  t.match(r.text, /worker 1: TEST FAULT/, `the answer names the worker: ${r.text}`);
  t.notMatch(r.text, /worker 0/, 'and only that one');
  const cli = await nsExec(topo.client, tunsteerArgv(['reload', '--state-dir', dir]), { allowFail: true, timeoutMs: 60_000 });
  t.not(cli.code, 0, 'tunsteer reload fails too');
  t.match(cli.stdout + cli.stderr, /worker 1/, 'and names the worker');
  const a = await burst(7000);
  t.equal(a.echoed, BURST, 'the running rules stay, on both workers');
  t.same(byWorker(a.conns), [0, 1]);
  t.same(decisions(a.conns), ['flip direct']);

  rmSync(prepareTrigger);
  writeFileSync(cfg, config('direct'));
  t.equal((await api.request('PUT', '/configs')).status, 200, 'once it can, the reload goes through');
});

t.test('a rule-set file replaced on disk reaches both workers', async (t) => {
  const a = await burst(7002);
  t.equal(a.echoed, 0, 'the set matches: 7002 rejected');
  t.same(byWorker(a.conns), [0, 1]);
  t.same(decisions(a.conns), ['steer reject']);
  const seen = gw.stdoutLines().filter((l) => l.includes('rule-set swapped in every worker')).length;
  writeSet('# nothing of ours\n198.51.100.0/24\n');
  await gw.waitForLine(
    (l) => l.includes('rule-set swapped in every worker') && gw.stdoutLines().filter((x) => x.includes('rule-set swapped in every worker')).length > seen,
    30_000,
  );
  const b = await burst(7002);
  t.equal(b.echoed, BURST, 'the new set does not match: 7002 goes through');
  t.same(byWorker(b.conns), [0, 1], 'on both workers');
  t.same(decisions(b.conns), ['default direct']);
  const swapped = lines().filter((l) => (l.msg as string | undefined)?.startsWith('rule-set'));
  t.ok(swapped.length >= 2, 'reloaded by the data plane, then swapped in every worker');
});

t.test('who made the connection: the user rule holds on both workers', async (t) => {
  const d = await burst(7003, 'daemon');
  t.equal(d.echoed, 0, "daemon's connections to 7003 are rejected");
  t.same(byWorker(d.conns), [0, 1]);
  t.same(decisions(d.conns), ['who reject']);
  t.ok(
    d.conns.every((c) => c.owner?.uid === 1),
    'each line names uid 1 (daemon)',
  );
  const r = await burst(7003);
  t.equal(r.echoed, BURST, "root's go through");
  t.same(byWorker(r.conns), [0, 1]);
  t.ok(
    r.conns.every((c) => c.owner?.uid === 0),
    'uid 0 on every line',
  );
});

t.test('the control API: every worker’s connections listed, one closed on worker 1 by id, hits summed', async (t) => {
  const stopFile = join(topo.tmp, 'stop-load');
  const N = 40;
  const load = spawnNodeInNs(t, topo.client, join(ROOT, 'test/helpers/echo-load.ts'), [PEER_IP, '7001', String(N), stopFile]);
  const ready = JSON.parse(await load.waitForLine((l) => l.includes('ready'), 120_000));
  t.equal(ready.ready, N, `${N} connections open and echoing`);

  const list = (await api.request('GET', '/connections')).json() as { connections: { id: string; metadata: { destinationPort: string } }[]; downloadTotal: number };
  const ours = list.connections.filter((c) => String(c.metadata.destinationPort) === '7001');
  t.equal(ours.length, N, `all ${N} listed`);
  const workerOf = (id: string) => Number(id.split('.')[0]);
  t.same([...new Set(ours.map((c) => workerOf(c.id)))].sort(), [0, 1], 'from both workers (ids "0.N" and "1.N")');
  t.ok(list.downloadTotal > 0, 'bytes summed over the workers');

  const victim = ours.find((c) => workerOf(c.id) === 1)!;
  const del = await api.request('DELETE', `/connections/${victim.id}`);
  t.equal(del.status, 204, `DELETE /connections/${victim.id}`);
  const after = (await api.request('GET', '/connections')).json() as { connections: { id: string }[] };
  t.notOk(
    after.connections.some((c) => c.id === victim.id),
    'gone from the list',
  );

  writeFileSync(stopFile, '');
  const result = JSON.parse(await load.waitForLine((l) => l.includes('"ok"'), 120_000)) as { failures: string[] };
  t.equal(result.failures.length, 1, `only the closed one failed: ${JSON.stringify(result.failures)}`);

  // hits count from the last reload on (its policy is new): the rule "flip" has had no connection since
  const a = await burst(7000);
  t.same(byWorker(a.conns), [0, 1]);
  const rules = (await api.request('GET', '/rules')).json() as { rules: { tunsteer: { name: string }; extra: { hitCount: number } }[] };
  const flip = rules.rules.find((r) => r.tunsteer.name === 'flip');
  t.equal(flip?.extra.hitCount, BURST, `rule "flip": the ${BURST} connections of both workers counted`);
});

t.test('stop: routes restored', async (t) => {
  gw.kill('SIGTERM');
  t.equal((await gw.exited()).code, 0, 'a clean stop exits 0');
  t.equal((await snapshotRouting(topo.client)).text, before.text);
});
