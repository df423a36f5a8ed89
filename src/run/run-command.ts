// `tunsteer run -- CMD`: one program in a network namespace (and a mount
// namespace, for its own resolv.conf) of its own, whose only route is the TUN;
// the gateway stays in this namespace, where its upstream sockets go out as
// usual. As root, the TUN is created inside the program's namespace by
// entering it for two syscalls (src/tun/native); without root, the namespaces
// come with a user namespace of their own, the TUN is made in there and its fd
// handed out (run-inside.ts). Nothing is left behind: the namespace dies with
// the program, the TUN with the gateway. Exits with CMD's status.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Writable } from 'node:stream';
import type { GatewaySettings } from '../config/settings.js';
import { runGateway, settleDataPlane } from '../gateway/gateway.js';
import { loadTunAddon } from '../tun/native-addon.js';

/** The resolver the program sees: any address routed into the TUN works, the gateway answers port 53. */
const RUN_RESOLVER = '198.18.0.2';

// In the new namespaces: wait for the gateway's "go" on fd 3, put our resolv.conf
// over the real one (a private mount namespace: nobody else sees it), run CMD.
const CHILD_SCRIPT = 'read -r go <&3 && exec 3<&- && mount --bind "$0" /etc/resolv.conf && exec "$@"';

// Without root, first (as root of the new user namespace) the TUN is made and
// its fd handed out on fd 4, by `tunsteer __tun-inside` (run-inside.ts).
const CHILD_SCRIPT_USERNS = `"$TS_NODE" $TS_NODE_ARGS "$TS_MAIN" __tun-inside "$TS_TUN_NAME" "$TS_TUN_MTU" "$TS_TUN_ADDRESS" || exit 125; exec 4>&-; ${CHILD_SCRIPT}`;

/** The exit status of a program that cannot be found, as shells give it. */
export const EXIT_NOT_FOUND = 127;

/** up: the gateway's settings (route-all, its own state dir); argv: the program and its arguments. */
export async function runProgram(up: GatewaySettings, argv: string[]): Promise<number> {
  // said here, before anything is made: inside, the shell that starts it would name our resolv.conf instead
  const missing = programProblem(argv[0]);
  if (missing) {
    process.stderr.write(`tunsteer run: ${missing}\n`);
    return EXIT_NOT_FOUND;
  }
  const root = process.getuid?.() === 0;
  if (!root) {
    const why = userNamespacesForbidden();
    if (why) {
      process.stderr.write(`tunsteer run: without root it needs a user namespace, and this kernel forbids them to unprivileged users (${why}); run it as root\n`);
      return 1;
    }
  }
  // named for this process, like the state dir: what a run leaves (only a kill -9 may) says whose it was
  const dir = mkdtempSync(join(tmpdir(), `tunsteer-run-${process.pid}-`));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  // every way out (the program's end, a signal, an error) removes it
  process.once('exit', cleanup);
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(resolv, `# tunsteer run: DNS is answered by the gateway\nnameserver ${RUN_RESOLVER}\n`);
  const [ours, theirs] = root ? [-1, -1] : loadTunAddon().socketPair();
  const child = root
    ? spawn('unshare', ['--net', '--mount', '--propagation', 'private', '--', 'sh', '-c', CHILD_SCRIPT, resolv, ...argv], {
        stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
      })
    : spawn('unshare', ['--user', '--map-root-user', '--net', '--mount', '--propagation', 'private', '--', 'sh', '-c', CHILD_SCRIPT_USERNS, resolv, ...argv], {
        stdio: ['inherit', 'inherit', 'inherit', 'pipe', theirs],
        env: {
          ...process.env,
          TS_NODE: process.execPath,
          TS_NODE_ARGS: process.execArgv.join(' '),
          TS_MAIN: process.argv[1],
          TS_TUN_NAME: up.tunName,
          TS_TUN_MTU: String(up.mtu),
          TS_TUN_ADDRESS: up.tunAddress,
        },
      });
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGKILL' ? 9 : 15)));
    child.on('error', (e) => {
      process.stderr.write(`tunsteer run: cannot start unshare: ${e.message}\n`);
      resolve(127);
    });
  });
  try {
    const netns = await newNetns(child.pid!, exited);
    // our own signals reach the program too; its exit ends the gateway
    for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
    if (!root) closeSync(theirs);
    const adoptTun = root ? undefined : { fd: await receiveTun(ours, exited), name: up.tunName };
    if (!root) closeSync(ours);
    // a signal ends the program (passed on above; Ctrl-C reaches it from the terminal), and its exit ends
    // run with its status: a script sees the interrupted program's 130 or 143, never a 0
    // an adopted TUN is the one queue the helper opened: one thread reads it
    await runGateway({ ...up, netns, ephemeralNetns: true, adoptTun, ...(adoptTun ? { workers: 1 } : {}) }, { onSignal: () => {} });
    (child.stdio[3] as Writable).end('go\n');
  } catch (e) {
    child.kill('SIGKILL');
    cleanup();
    throw e;
  }
  const code = await exited;
  // its last connections may still be closing on the gateway's side: their log lines first
  await settleDataPlane(1000);
  cleanup();
  // the exit handlers restore (close the TUN) and remove the state dir on the way out
  process.exit(code);
}

/** Why CMD cannot be run (not found in PATH, not executable), or null when it can. */
export function programProblem(cmd: string, path = process.env.PATH ?? ''): string | null {
  const runnable = (f: string) => {
    try {
      accessSync(f, constants.X_OK);
      return !statSync(f).isDirectory();
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) return runnable(cmd) ? null : `${cmd}: no such program, or not executable`;
  if (path.split(delimiter).some((d) => runnable(join(d || '.', cmd)))) return null;
  return `${cmd}: command not found (looked in PATH: ${path || '(empty)'})`;
}

/** The TUN's fd, passed by `__tun-inside` over the socket at the child's fd 4. */
async function receiveTun(fd: number, exited: Promise<number>): Promise<number> {
  const addon = loadTunAddon();
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; i < 1000 && !gone; i++) {
    let got: number;
    try {
      got = addon.recvFd(fd);
    } catch {
      break; // closed without an fd: the helper failed and said why on stderr
    }
    if (got >= 0) return got;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the TUN was not handed over from the new namespace (see the message above)');
}

/** Why this kernel forbids unprivileged user namespaces, or '' when it seems to allow them. */
function userNamespacesForbidden(): string {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return '';
    }
  };
  if (read('/proc/sys/user/max_user_namespaces') === '0') return 'user.max_user_namespaces is 0';
  if (read('/proc/sys/kernel/unprivileged_userns_clone') === '0') return 'kernel.unprivileged_userns_clone is 0';
  if (read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') return 'kernel.apparmor_restrict_unprivileged_userns is 1';
  return '';
}

/** Resolves with /proc/PID/ns/net once the child runs in a namespace other than ours. */
async function newNetns(pid: number, exited: Promise<number>): Promise<string> {
  const ours = readlinkSync('/proc/self/ns/net');
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; i < 500 && !gone; i++) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) !== ours) return `/proc/${pid}/ns/net`;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(gone ? 'the program exited before its namespace was ready' : 'no new network namespace after 5 s');
}
