// Network namespaces for end-to-end tests. Everything a test does to routing
// happens inside namespaces made here; the host's own routes, rules, sysctls
// and firewall are never touched.
//
//   const ns = await createNetns(t, 'tsX-');      // deleted in t.teardown, pass or fail
//   const { aIf, bIf } = await veth(ns, peer, { aAddr: '192.0.2.1/24', bAddr: '192.0.2.2/24' });
//   await nsExec(ns, ['ip', 'route', 'add', 'default', 'via', '192.0.2.2']);
//   const before = await snapshotRouting(ns);      // byte-exact text, compare with t.equal
//   const child = spawnInNs(t, ns, [process.execPath, '--import', 'tsx', 'worker.ts']); // killed by PID in teardown
//
// Safety nets: names are `<prefix><pid>-<random>`, so a namespace left by a
// test process that died (SIGKILL, OOM) is recognised by its dead pid and
// removed the next time a test creates one with the same prefix; and the
// process removes whatever it still has on exit and on SIGINT/SIGTERM/SIGHUP.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** The part of a tap Test these helpers use. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface NsExecOptions {
  /** Resolve with the exit code instead of rejecting on a non-zero exit. */
  allowFail?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, then stdin is closed. */
  input?: string | Buffer;
}

const live = new Set<string>();
/** Children of spawnInNs still running: a test that dies before its teardown must not leave them (a gateway, its peers) behind. */
const running = new Set<ChildProcess>();
const swept = new Set<string>();
let safetyNetInstalled = false;

function run(argv: string[], opts: NsExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      argv[0],
      argv.slice(1),
      { timeout: opts.timeoutMs ?? 30_000, encoding: 'utf8', env: opts.env, cwd: opts.cwd, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        if (err && (!opts.allowFail || typeof err.code === 'string' || err.killed)) {
          const why = err.killed ? `timed out after ${opts.timeoutMs ?? 30_000} ms` : `exit ${String(err.code)}`;
          reject(Object.assign(new Error(`\`${argv.join(' ')}\` failed (${why}): ${stderr.trim() || err.message}`), { stdout, stderr, code }));
        } else {
          resolve({ stdout, stderr, code });
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

function deleteNow(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // already gone
  }
  live.delete(name);
}

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', () => {
    killRunning();
    for (const n of [...live]) deleteNow(n);
  });
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(sig, () => {
      killRunning();
      for (const n of [...live]) deleteNow(n);
      process.exit(code);
    });
  }
}

function killRunning(): void {
  for (const c of running) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone already
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `<prefix><pid>-*` namespaces whose creating test process is dead. Returns their names. */
export function sweepStaleNetns(prefix: string): string[] {
  let names: string[];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return [];
  }
  const gone: string[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]+$/.exec(n.slice(prefix.length));
    if (!m || pidAlive(Number(m[1]))) continue;
    deleteNow(n);
    gone.push(n);
  }
  return gone;
}

/**
 * A new, empty network namespace with lo up, named `<prefix><pid>-<hex>`
 * (e.g. tsR-4242-9f3a1c), deleted in t.teardown whatever the outcome.
 */
export async function createNetns(t: TeardownHost, prefix: string): Promise<string> {
  if (!/^[A-Za-z0-9]{1,8}-$/.test(prefix)) throw new Error(`netns prefix "${prefix}" must look like "tsX-"`);
  installSafetyNet();
  if (!swept.has(prefix)) {
    swept.add(prefix);
    sweepStaleNetns(prefix);
  }
  const name = `${prefix}${process.pid}-${randomBytes(3).toString('hex')}`;
  await run(['ip', 'netns', 'add', name]);
  live.add(name);
  t.teardown(() => deleteNow(name));
  await run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Runs argv inside the namespace (`ip netns exec NS argv...`, no shell). Rejects on a non-zero exit unless allowFail. */
export function nsExec(ns: string, argv: string[], opts: NsExecOptions = {}): Promise<ExecResult> {
  return run(['ip', 'netns', 'exec', ns, ...argv], opts);
}

export interface VethOptions {
  /** Address/prefix for each end, e.g. 192.0.2.1/24; omit to leave an end unaddressed. */
  aAddr?: string;
  bAddr?: string;
  mtu?: number;
  /** Interface names (≤15 chars); default vA<hex>/vB<hex>, returned. */
  aName?: string;
  bName?: string;
  /**
   * Keep IPv6 duplicate address detection on these two interfaces (default off):
   * with DAD on, the link-local routes settle a second or two after the link
   * comes up, which breaks byte-exact routing snapshots taken right away.
   */
  ipv6Dad?: boolean;
}

/** A veth pair with one end in each namespace, addressed and up. */
export async function veth(nsA: string, nsB: string, o: VethOptions = {}): Promise<{ aIf: string; bIf: string }> {
  const tag = randomBytes(3).toString('hex');
  const aIf = o.aName ?? `vA${tag}`;
  const bIf = o.bName ?? `vB${tag}`;
  await run(['ip', 'link', 'add', aIf, 'netns', nsA, 'type', 'veth', 'peer', 'name', bIf, 'netns', nsB]);
  for (const [ns, dev, addr] of [
    [nsA, aIf, o.aAddr],
    [nsB, bIf, o.bAddr],
  ] as const) {
    if (!o.ipv6Dad) await nsExec(ns, ['sysctl', '-q', '-w', `net.ipv6.conf.${dev}.accept_dad=0`]);
    if (o.mtu) await run(['ip', '-n', ns, 'link', 'set', 'dev', dev, 'mtu', String(o.mtu)]);
    if (addr) await run(['ip', '-n', ns, 'addr', 'add', addr, 'dev', dev]);
    await run(['ip', '-n', ns, 'link', 'set', 'dev', dev, 'up']);
  }
  return { aIf, bIf };
}

export interface RoutingSnapshot {
  route4: string;
  route6: string;
  rule4: string;
  rule6: string;
  /** All four, each under a header line: compare with t.equal for a readable diff. */
  text: string;
}

/** The exact text of `ip [-6] route show table all` and `ip [-6] rule show` in the namespace. */
export async function snapshotRouting(ns: string): Promise<RoutingSnapshot> {
  const [route4, route6, rule4, rule6] = await Promise.all(
    [
      ['-4', 'route', 'show', 'table', 'all'],
      ['-6', 'route', 'show', 'table', 'all'],
      ['-4', 'rule', 'show'],
      ['-6', 'rule', 'show'],
    ].map(async (a) => (await run(['ip', '-n', ns, ...a])).stdout),
  );
  const text = [`## ip -4 route show table all\n${route4}`, `## ip -6 route show table all\n${route6}`, `## ip -4 rule show\n${rule4}`, `## ip -6 rule show\n${rule6}`].join('');
  return { route4, route6, rule4, rule6, text };
}

export interface NsChild extends ChildProcess {
  /** Resolves with the first stdout line for which match returns true; rejects on exit or timeout. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves once the process has exited (immediately if it has). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything written to stderr so far. */
  stderrText(): string;
  /** Every stdout line so far. */
  stdoutLines(): readonly string[];
}

/**
 * Starts argv inside the namespace. `ip netns exec` switches namespace and
 * execs in place, so the child's PID is the program's own; teardown sends it
 * SIGKILL by that PID if it is still running and waits for it to go.
 */
export function spawnInNs(t: TeardownHost, ns: string, argv: string[], opts: SpawnOptions = {}): NsChild {
  installSafetyNet();
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...opts }) as NsChild;
  running.add(child);
  child.on('exit', () => running.delete(child));
  let done: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitWaiters: ((v: { code: number | null; signal: NodeJS.Signals | null }) => void)[] = [];
  child.on('exit', (code, signal) => {
    done = { code, signal };
    for (const w of exitWaiters.splice(0)) w(done);
  });
  child.on('error', () => {
    done ??= { code: -1, signal: null };
    for (const w of exitWaiters.splice(0)) w(done!);
  });
  child.exited = () => (done ? Promise.resolve(done) : new Promise((r) => exitWaiters.push(r)));

  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stderrText = () => err;

  const lines: string[] = [];
  child.stdoutLines = () => lines;
  const lineWaiters = new Set<(l: string | null) => void>();
  if (child.stdout) {
    createInterface({ input: child.stdout }).on('line', (l) => {
      lines.push(l);
      for (const w of lineWaiters) w(l);
    });
  }
  child.on('exit', () => {
    for (const w of lineWaiters) w(null);
  });
  child.waitForLine = (match, timeoutMs = 30_000) =>
    new Promise((resolve, reject) => {
      const seen = lines.find(match);
      if (seen !== undefined) return resolve(seen);
      if (done) return reject(new Error(`process exited (${JSON.stringify(done)}) before the expected line; stderr: ${err}`));
      const timer = setTimeout(() => {
        lineWaiters.delete(w);
        reject(new Error(`no expected line within ${timeoutMs} ms; stdout: ${lines.join('\n')}; stderr: ${err}`));
      }, timeoutMs);
      const w = (l: string | null) => {
        if (l === null) {
          clearTimeout(timer);
          lineWaiters.delete(w);
          // let the exit status arrive first, for the message
          setImmediate(() => reject(new Error(`process exited (${JSON.stringify(done)}) before the expected line; stderr: ${err}`)));
        } else if (match(l)) {
          clearTimeout(timer);
          lineWaiters.delete(w);
          resolve(l);
        }
      };
      lineWaiters.add(w);
    });

  // SIGTERM first, so a gateway whose test failed still restores its routes
  // (later tests in the same namespace would find them in the way); SIGKILL
  // what has not exited 5 s later.
  t.teardown(async () => {
    if (done || child.pid === undefined) return;
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(child.pid!, sig);
      } catch {
        // exited meanwhile
      }
    };
    signal('SIGTERM');
    const late = setTimeout(() => signal('SIGKILL'), 5_000);
    await child.exited();
    clearTimeout(late);
  });
  return child;
}

/** Runs a TypeScript file with node + tsx inside the namespace (see spawnInNs). */
export function spawnNodeInNs(t: TeardownHost, ns: string, script: string, args: string[] = [], opts: SpawnOptions = {}): NsChild {
  return spawnInNs(t, ns, [process.execPath, '--import', 'tsx', script, ...args], opts);
}
