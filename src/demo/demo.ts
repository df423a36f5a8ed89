// `tunsteer demo`: tunsteer at work in a minute, offline, without touching
// this machine's network. It builds two namespaces of its own (demo-net.ts),
// starts a small HTTP and DNS server in one (demo-server.ts), runs the gateway
// in the other, first in route-all mode and then in per-host mode, fetches
// through it (demo-fetch.ts) and shows what to look at: the connection's log
// line, `tunsteer status`, the rule that matched. Everything is removed at the
// end, also on Ctrl-C, SIGTERM or an error; a progress line on stderr says
// where it is and how long is left.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Progress } from '../cli/progress.js';
import { APP_IP, CLIENT_IP, DNS_IP, SERVER_IP, buildDemoNet, demoLeftovers, demoNet, removeDemoNet, sweepDeadDemos } from './demo-net.js';
import type { FetchResult } from './demo-fetch.js';

// estimates from runs from dist (npx tunsteer demo, about 6 s here); from source with tsx it is slower, and the pace says so
const STEPS = [
  { name: 'network', estimateMs: 400 },
  { name: 'server', estimateMs: 600 },
  { name: 'route-all', estimateMs: 1500 },
  { name: 'route-all: fetch', estimateMs: 800 },
  { name: 'route-all: stop', estimateMs: 700 },
  { name: 'per-host', estimateMs: 1500 },
  { name: 'per-host: fetch', estimateMs: 1000 },
  { name: 'per-host: stop', estimateMs: 700 },
  { name: 'clean up', estimateMs: 300 },
];

/** The demo's rules: one names the app (so its line says which rule), one rejects a name. */
const CONFIG = `# tunsteer demo: a rule that names the app, and one that blocks a name
rules:
  - { name: demo-app, domain: app.demo.example, action: direct }
  - { name: demo-block, domain: blocked.demo.example, action: reject }
`;

class Interrupted extends Error {}

/** A process of the demo's, started in a namespace with `ip netns exec` (same pid), in a process group of its own. */
interface DemoChild {
  proc: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

export async function runDemo(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('tunsteer demo builds two network namespaces, which needs root: run it as root (sudo npx tunsteer demo)\n');
    return 1;
  }
  const missing = ['/dev/net/tun'].filter((p) => !existsSync(p));
  if (spawnSync('ip', ['-V']).error) missing.push('the ip command (Debian: apt-get install iproute2)');
  if (missing.length) {
    process.stderr.write(`tunsteer demo needs ${missing.join(' and ')}\n`);
    return 1;
  }
  const net = demoNet();
  const progress = new Progress(STEPS, { label: 'demo' });
  const say = (text = '') => progress.print(process.stdout, `${text}\n`);
  const children = new Set<DemoChild>();
  let stopping: Promise<void> | null = null;
  let interrupted: NodeJS.Signals | null = null;

  /** Ends everything the demo started and removes its network; once, whichever way the demo ends. */
  const cleanUp = (): Promise<void> =>
    (stopping ??= (async () => {
      // gateways first, the way a user stops one (they restore their routes), then the rest
      for (const c of children) {
        if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
        c.proc.kill('SIGTERM');
        const t = setTimeout(() => c.proc.kill('SIGKILL'), 10_000);
        await c.exited;
        clearTimeout(t);
      }
      removeDemoNet(net);
    })());
  // kill -9 of a child or process.exit from anywhere: the namespaces and files still go
  const lastResort = () => removeDemoNet(net);
  process.once('exit', lastResort);
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = sig;
    progress.stop();
    process.stderr.write(`\ntunsteer demo: ${sig}: stopping, removing the demo's namespaces and files\n`);
    void cleanUp().then(() => {
      const left = demoLeftovers(net);
      process.stderr.write(left.length ? `tunsteer demo: left behind: ${left.join(', ')}\n` : 'tunsteer demo: everything removed\n');
      process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGHUP' ? 129 : 143);
    });
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

  const check = () => {
    if (interrupted) throw new Interrupted();
  };
  const start = (ns: string, args: string[]): DemoChild => {
    check();
    const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, process.argv[1], ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group: Ctrl-C reaches the demo, which stops them in order
      detached: true,
    });
    const c: DemoChild = { proc, lines: [], exited: new Promise((r) => proc.once('exit', (code) => r(code))) };
    createInterface({ input: proc.stdout! }).on('line', (l) => c.lines.push(l));
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    void c.exited.then(() => {
      if (err.trim() && !interrupted && stopping === null)
        c.lines.push(
          ...err
            .trim()
            .split('\n')
            .map((l) => `stderr: ${l}`),
        );
    });
    children.add(c);
    return c;
  };
  const tunsteer = (ns: string, args: string[]) => {
    check();
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, process.argv[1], ...args], { encoding: 'utf8', timeout: 30_000 });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const fetchFrom = async (url: string): Promise<FetchResult> => {
    const c = start(net.client, ['__demo-fetch', url]);
    await c.exited;
    children.delete(c);
    return JSON.parse(c.lines.find((l) => l.startsWith('{')) ?? `{"url":"${url}","error":"no result","ms":0}`) as FetchResult;
  };

  try {
    const swept = sweepDeadDemos();
    progress.step('network');
    say("tunsteer demo: two network namespaces of its own; this machine's routes, resolver and firewall are not touched.");
    if (swept.length) say(`(removed what earlier demos, killed before they could clean up, left: pids ${swept.join(', ')})`);
    buildDemoNet(net);
    writeFileSync(join(net.runDir, 'demo.yaml'), CONFIG);
    say('');
    say(`  client  ${net.client}: ${CLIENT_IP}/24, default route via ${SERVER_IP}, its own resolv.conf (nameserver ${DNS_IP})`);
    say(`  server  ${net.server}: ${SERVER_IP}/24; app.demo.example is ${APP_IP} (HTTP), DNS at ${DNS_IP}`);

    progress.step('server');
    const server = start(net.server, ['__demo-server', APP_IP, DNS_IP]);
    await waitFor(() => server.lines.some((l) => l.includes('listening')), 15_000, 'the demo server did not start', server, check);

    for (const mode of ['route-all', 'per-host'] as const) {
      progress.step(mode);
      const stateDir = join(net.runDir, mode);
      const args =
        mode === 'route-all'
          ? ['up', '--mode', 'route-all', '--config', join(net.runDir, 'demo.yaml'), '--state-dir', stateDir, '--tun-name', 'tsdemo0']
          : [
              'up',
              '--mode',
              'per-host',
              '--host',
              'app.demo.example',
              '--host',
              'blocked.demo.example',
              '--config',
              join(net.runDir, 'demo.yaml'),
              '--state-dir',
              stateDir,
              '--tun-name',
              'tsdemo0',
            ];
      say('');
      say(
        mode === 'route-all'
          ? '1. route-all: every connection of the client namespace goes through the gateway'
          : '2. per-host: only the names given with --host go through the gateway; the rest goes direct',
      );
      say(`   $ ip netns exec ${net.client} tunsteer ${args.join(' ')}`);
      // TUNSTEER_TEST_DEMO_BREAK=MODE (tests only): that gateway gets a bad flag and fails, to test the demo's error path
      if (process.env.TUNSTEER_TEST_DEMO_BREAK === mode) args.push('--mtu', '1');
      const gw = start(net.client, args);
      await waitFor(() => tunsteer(net.client, ['status', '--state-dir', stateDir]).code === 0, 30_000, `the ${mode} gateway did not come up`, gw, check);
      const up = gw.lines.find((l) => l.includes('"msg":"gateway up"'));
      if (up) say(`   its startup line: ${brief(up, ['mode', 'tun', 'resolvers', 'plan'])}`);

      progress.step(`${mode}: fetch`);
      const seen = gw.lines.length;
      const app = await fetchFrom('http://app.demo.example/');
      say('');
      say(`   fetch http://app.demo.example/ from the client: ${fetchText(app)}`);
      if (app.status !== 200) throw new Error(`the fetch through the gateway failed: ${JSON.stringify(app)}`);
      const line = await waitForLine(gw, seen, (r) => r.msg === 'conn' && r.host === 'app.demo.example', check);
      say("   the gateway's log line for that connection (one per connection, when it ends):");
      say(`     ${line}`);
      const rec = JSON.parse(line) as Record<string, unknown>;
      say(
        `   look at: "host" ${JSON.stringify(rec.host)} (the name the gateway saw${mode === 'per-host' ? ', from its DNS answer' : ', from the HTTP request'}), "dst" ${JSON.stringify(rec.dst)}${mode === 'per-host' ? ' (a fake IP from the pool)' : ''},`,
      );
      say(`            "rule" ${JSON.stringify(rec.rule)} and "action" ${JSON.stringify(rec.action)} (the rule that matched), "up"/"down" bytes, "end" ${JSON.stringify(rec.end)}`);
      const blocked = await fetchFrom('http://blocked.demo.example/');
      say(`   fetch http://blocked.demo.example/: ${fetchText(blocked)}: rule "demo-block" rejected it`);
      if (mode === 'per-host') {
        const before = gw.lines.length;
        const other = await fetchFrom('http://other.demo.example/');
        await sleep(300);
        const through = gw.lines.slice(before).some((l) => l.includes('other.demo.example'));
        say(
          `   fetch http://other.demo.example/ (not a --host name): ${fetchText(other)}; ${through ? 'it went through the gateway (unexpected)' : 'no log line: it went direct, past the gateway'}`,
        );
      }
      const st = tunsteer(net.client, ['status', '--state-dir', stateDir]);
      say('');
      say(`   $ ip netns exec ${net.client} tunsteer status --state-dir ${stateDir}   (an excerpt)`);
      for (const l of statusExcerpt(st.stdout)) say(`     ${l}`);

      progress.step(`${mode}: stop`);
      const before = gw.lines.length;
      gw.proc.kill('SIGTERM');
      const code = await gw.exited;
      children.delete(gw);
      const stopLines = gw.lines
        .slice(before)
        .filter((l) => /"msg":"(restoring|restored, )/.test(l))
        .map((l) => (JSON.parse(l) as { msg: string }).msg);
      say('');
      say(`   stopped with SIGTERM (Ctrl-C does the same): ${stopLines.map((m) => `"${m}"`).join(', then ')}; exit ${code}`);
    }

    progress.step('clean up');
    server.proc.kill('SIGKILL');
    await server.exited;
    children.delete(server);
    await cleanUp();
    const left = demoLeftovers(net);
    progress.finish(left.length ? `finished, but left ${left.join(', ')}` : 'finished; its namespaces and files are removed');
    say('');
    say('Next: `tunsteer run --host example.com -- curl -sI https://example.com` steers one real program;');
    say('      README.md, "Trying it safely", shows a gateway in a namespace you build yourself; `tunsteer help up` lists every option.');
    return left.length ? 1 : 0;
  } catch (e) {
    if (e instanceof Interrupted || interrupted) return new Promise<number>(() => {}); // the signal handler ends the process
    progress.stop();
    process.stderr.write(`tunsteer demo failed: ${(e as Error).message}\n`);
    await cleanUp();
    const left = demoLeftovers(net);
    process.stderr.write(left.length ? `tunsteer demo: left behind: ${left.join(', ')}\n` : 'tunsteer demo: everything removed\n');
    return 1;
  } finally {
    process.off('exit', lastResort);
    if (!interrupted) for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(ok: () => boolean, timeoutMs: number, what: string, child: DemoChild, check: () => void): Promise<void> {
  for (const until = Date.now() + timeoutMs; Date.now() < until; await sleep(100)) {
    check();
    if (ok()) return;
    if (child.proc.exitCode !== null) break;
  }
  throw new Error(`${what}${child.lines.length ? `:\n  ${child.lines.slice(-10).join('\n  ')}` : ''}`);
}

/** The first JSON line after `from` that matches, as the gateway wrote it. */
async function waitForLine(c: DemoChild, from: number, match: (r: Record<string, unknown>) => boolean, check: () => void): Promise<string> {
  for (const until = Date.now() + 10_000; Date.now() < until; await sleep(50)) {
    check();
    const l = c.lines.slice(from).find((x) => x.startsWith('{') && match(JSON.parse(x) as Record<string, unknown>));
    if (l) return l;
  }
  throw new Error('the gateway logged no line for the connection');
}

function fetchText(r: FetchResult): string {
  return r.status !== undefined ? `${r.status} "${(r.body ?? '').trim().slice(0, 90)}" in ${r.ms} ms` : `failed: ${r.error} after ${r.ms} ms`;
}

/** Some fields of a JSON log line, as JSON. */
function brief(line: string, keys: string[]): string {
  const r = JSON.parse(line) as Record<string, unknown>;
  return JSON.stringify(Object.fromEntries(keys.filter((k) => k in r).map((k) => [k, r[k]])));
}

/** `tunsteer status` down to its routing, and the counters a newcomer looks at first. */
export function statusExcerpt(text: string): string[] {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('counters'));
  const head = at < 0 ? lines.filter(Boolean) : lines.slice(0, at);
  const wanted = /^\s+(connections|proxy_total|proxy_active|proxy_failed|dns_queries|dns_mapped|dns_forwarded|fake_mappings|mem_rss)\s/;
  return at < 0 ? head : [...head, lines[at], ...lines.slice(at + 1).filter((l) => wanted.test(l)), '  ...'];
}
