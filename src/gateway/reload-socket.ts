// `tunsteer reload` reaches the running `up` through a Unix socket in its
// state dir (root's, mode 0600, like the journal beside it): one JSON line
// asks ({"force":false}), one JSON line answers (the ReloadResult). A signal
// could ask too, but could not answer: the CLI must say which field is wrong
// and exit 2, and return only once new connections follow the new config.
import net from 'node:net';
import { chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ReloadResult } from '../data-plane/ipc.js';

/** Longest request line read; anything longer is not ours. */
const MAX_LINE = 4096;

export function reloadSocketPath(stateDir: string): string {
  return join(stateDir, 'reload.sock');
}

export function serveReloadSocket(stateDir: string, reload: (by: string, force: boolean) => Promise<ReloadResult>, onError: (err: Error) => void): net.Server {
  const path = reloadSocketPath(stateDir);
  rmSync(path, { force: true }); // left by a gateway killed with -9
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > MAX_LINE) sock.destroy();
        return;
      }
      sock.removeAllListeners('data');
      let force: boolean;
      try {
        force = (JSON.parse(buf.slice(0, nl)) as { force?: unknown }).force === true;
      } catch {
        return void sock.end(JSON.stringify({ ok: false, refused: 'failed', problems: ['not a reload request'], applied: [], routing: [], restart: [], ms: 0 }) + '\n');
      }
      reload('tunsteer reload', force).then(
        (r) => sock.end(JSON.stringify(r) + '\n'),
        (e: Error) => sock.end(JSON.stringify({ ok: false, refused: 'failed', problems: [e.message], applied: [], routing: [], restart: [], ms: 0 }) + '\n'),
      );
    });
  });
  server.on('error', onError);
  server.listen(path, () => chmodSync(path, 0o600));
  server.unref();
  return server;
}
