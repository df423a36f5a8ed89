// `tunsteer reload [--state-dir DIR] [--force]`: the running `up` reads its
// config file again (as on SIGHUP), through the state dir's socket, and says
// what it did. Exits 0 once new connections follow the new config; 2 when the
// config is refused (every problem named, the running one kept); 1 when no
// gateway answers or applying failed.
import net from 'node:net';
import { DEFAULT_STATE_DIR } from '../../config/defaults.js';
import { reloadSocketPath } from '../../gateway/reload-socket.js';
import type { ReloadResult } from '../../data-plane/ipc.js';

const TIMEOUT_MS = 60_000;

export async function reload(stateDir = DEFAULT_STATE_DIR, force = false): Promise<number> {
  let r: ReloadResult;
  try {
    r = await ask(reloadSocketPath(stateDir), force);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' || code === 'ECONNREFUSED'
        ? `no gateway runs with state dir ${stateDir}`
        : code === 'EACCES'
          ? `${reloadSocketPath(stateDir)}: permission denied (run as root)`
          : (e as Error).message;
    process.stderr.write(`tunsteer: reload: ${why}\n`);
    return 1;
  }
  if (r.ok) {
    const parts = [`reloaded in ${r.ms} ms`, r.applied.length ? `changed: ${r.applied.join(', ')}` : 'no setting changed (secrets read again)'];
    process.stdout.write(parts.join('; ') + '\n');
    for (const step of r.routing) process.stdout.write(`  routing ${step}\n`);
    for (const p of r.restart) process.stdout.write(`  not applied: ${p}\n`);
    return 0;
  }
  const head =
    r.refused === 'invalid'
      ? 'the config is not valid; the running one is kept'
      : r.refused === 'restart'
        ? 'refused: these settings need a restart (tunsteer up again), or reload with --force to apply the rest'
        : 'reload failed';
  process.stderr.write(`tunsteer: ${head}\n${r.problems.map((p) => `  ${p}\n`).join('')}`);
  return r.refused === 'invalid' || r.refused === 'restart' ? 2 : 1;
}

function ask(path: string, force: boolean): Promise<ReloadResult> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    const timer = setTimeout(() => sock.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify({ force }) + '\n'));
    sock.on('data', (d: string) => (buf += d));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as ReloadResult);
      } catch {
        reject(new Error('the gateway gave no answer'));
      }
    });
  });
}
