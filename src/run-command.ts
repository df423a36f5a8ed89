// `tunsteer run -- CMD`: one program in a network namespace (and a mount
// namespace, for its own resolv.conf) of its own, whose only route is the TUN;
// the gateway stays in this namespace, where its upstream sockets go out as
// usual. The TUN is created inside the program's namespace by entering it for
// two syscalls (src/tun/native). Nothing is left behind: the namespace dies
// with the program, the TUN with the gateway. Exits with CMD's status.
import { spawn } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { RunArgs } from './cli-args.js';
import { runUp, settleDataPlane } from './gateway.js';

/** The resolver the program sees: any address routed into the TUN works, the gateway answers port 53. */
const RUN_RESOLVER = '198.18.0.2';

// In the new namespaces: wait for the gateway's "go" on fd 3, put our resolv.conf
// over the real one (a private mount namespace: nobody else sees it), run CMD.
const CHILD_SCRIPT = 'read -r go <&3 && exec 3<&- && mount --bind "$0" /etc/resolv.conf && exec "$@"';

export async function runRun(args: RunArgs): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('tunsteer run: needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) for now; running unprivileged through a user namespace is not built yet\n');
    return 1;
  }
  const dir = mkdtempSync(join(tmpdir(), 'tunsteer-run-'));
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(resolv, `# tunsteer run: DNS is answered by the gateway\nnameserver ${RUN_RESOLVER}\n`);
  const child = spawn('unshare', ['--net', '--mount', '--propagation', 'private', '--', 'sh', '-c', CHILD_SCRIPT, resolv, ...args.argv], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
  });
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGINT' ? 2 : signal === 'SIGKILL' ? 9 : 15)));
    child.on('error', (e) => {
      process.stderr.write(`tunsteer run: cannot start unshare: ${e.message}\n`);
      resolve(127);
    });
  });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const netns = await newNetns(child.pid!, exited);
    // our own signals reach the program too; its exit ends the gateway
    for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
    await runUp({ ...args.up, netns, ephemeralNetns: true });
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
  rmSync(args.up.stateDir, { recursive: true, force: true });
  // the exit handlers restore (close the TUN) on the way out
  process.exit(code);
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
