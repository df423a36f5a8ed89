// --restart with stack workers (issue 16): how long after a kill -9 of the
// data plane a new connection through the gateway answers, with each worker
// count asked for. The supervisor hands the TUN to a spare child that was
// started (and, with workers, had its worker threads loaded) before the kill.
//
//   node --import tsx bench/restart.ts                      workers 1 and 2, 4 kills each, from dist when built
//   ... --workers 1,2,4 --kills 4 --source                  from source (tsx in every thread: what the e2e tests pay)
//
// Builds and removes its own namespaces; traffic stays between them.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NGINX_IP, ROOT, makeTopology, startNginx, tunsteerArgv, waitForGateway } from '../test/helpers/topology.js';
import { nsExec, spawnInNs } from '../test/helpers/netns.js';
import { machineLoad, median, runBench, teardownHost } from './bench-kit.js';

const { values } = parseArgs({ options: { workers: { type: 'string' }, kills: { type: 'string' }, source: { type: 'boolean' } } });
const WORKERS = (values.workers ?? '1,2').split(',').map(Number);
/** At most 4: a fifth restart within 60 s ends the gateway (supervisor.ts MAX_RESTARTS). */
const KILLS = Math.min(4, Number(values.kills ?? 4));
/** Between a restart and the next kill: the new spare starts (node, modules, its workers). */
const SPARE_MS = 8000;
const { host, cleanup } = teardownHost();
const fromDist = !values.source && existsSync(join(ROOT, 'dist/src/cli/main.js'));
const cli = (args: string[]) => (fromDist ? [process.execPath, join(ROOT, 'dist/src/cli/main.js'), ...args] : tunsteerArgv(args));

async function pids(ns: string, stateDir: string): Promise<{ supervisor: number | null; dataPlane: number | null }> {
  const r = await nsExec(ns, cli(['status', '--state-dir', stateDir, '--json']), { allowFail: true });
  try {
    const st = JSON.parse(r.stdout).status;
    return { supervisor: st?.pid ?? null, dataPlane: st?.dataPlane?.pid ?? null };
  } catch {
    return { supervisor: null, dataPlane: null };
  }
}

/** ms from the kill to the first answer of nginx through the gateway (curl again each second at most). */
async function killToAnswer(ns: string, stateDir: string): Promise<number> {
  const dp = (await pids(ns, stateDir)).dataPlane;
  if (!dp) throw new Error('no data plane pid in status');
  const t0 = performance.now();
  process.kill(dp, 'SIGKILL');
  for (let i = 0; i < 40; i++) {
    const r = await nsExec(ns, ['curl', '-s', '--max-time', '1', `http://${NGINX_IP}/hello`], { allowFail: true, timeoutMs: 5000 });
    if (r.stdout === 'hello from nginx\n') return performance.now() - t0;
  }
  return NaN;
}

/** The supervisor's children other than the data plane: the spare (with its workers loaded), MB of RSS. */
function spareRssMb(supervisor: number, dp: number | null): number {
  let mb = 0;
  try {
    for (const pid of readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, 'utf8').trim().split(/\s+/).map(Number)) {
      if (!pid || pid === dp) continue;
      mb += Number(/^VmRSS:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    }
  } catch {
    // gone
  }
  return mb;
}

async function main() {
  const topo = await makeTopology(host);
  await startNginx(host, topo);
  const lines: string[] = [];
  for (const w of WORKERS) {
    const stateDir = mkdtempSync(join(tmpdir(), 'tsE-benchr-'));
    host.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
    const gw = spawnInNs(
      host,
      topo.client,
      cli(['up', '--mode', 'route-all', '--state-dir', stateDir, '--tun-name', 'tsr0', '--log-level', 'warn', '--restart', '--workers', String(w)]),
    );
    try {
      await waitForGateway(topo.client, stateDir, gw, 90_000);
      const ms: number[] = [];
      await new Promise((r) => setTimeout(r, SPARE_MS));
      const p = await pids(topo.client, stateDir);
      const spareMb = p.supervisor ? spareRssMb(p.supervisor, p.dataPlane) : NaN;
      const load = machineLoad();
      for (let k = 0; k < KILLS; k++) {
        await new Promise((r) => setTimeout(r, SPARE_MS));
        ms.push(await killToAnswer(topo.client, stateDir));
        process.stderr.write(`--workers ${w}: kill ${k + 1}: ${ms[k].toFixed(0)} ms\n`);
      }
      lines.push(`| ${w} | ${ms.map((x) => x.toFixed(0)).join(', ')} | ${median(ms).toFixed(0)} | ${spareMb.toFixed(0)} MB | ${load.end().text} |`);
    } finally {
      gw.kill('SIGTERM');
      await gw.exited();
    }
  }
  console.log(
    [
      `${new Date().toISOString()}; node ${process.version}; ${fromDist ? 'dist' : 'source (tsx)'}; kill -9 of the data plane to nginx answering through the gateway`,
      '',
      '| workers | ms, each kill | median | spare RSS, idle | machine |',
      '| ---: | --- | ---: | ---: | --- |',
      ...lines,
    ].join('\n'),
  );
}

runBench(main, cleanup);
