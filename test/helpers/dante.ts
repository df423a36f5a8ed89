// dante-server (danted) as a SOCKS5 server with UDP ASSOCIATE, for e2e tests:
// its own config file and pid file in the test's temp dir, started in a
// namespace the test made, stopped by PID in teardown. dante needs its
// internal (listening) and external (outgoing) addresses named, `socksmethod:
// none` for no authentication, and pass rules for the client, for CONNECT and
// UDP ASSOCIATE, and for the replies (`udpreply`, whose from/to is the
// remote host and the client).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, spawnInNs, type NsChild, type TeardownHost } from './netns.js';

export interface DanteOptions {
  /** Addresses it listens on (port 1080) and sends from: one per family it serves. */
  addresses: string[];
  port?: number;
  dir: string;
}

export function danteConfig(o: DanteOptions): string {
  const port = o.port ?? 1080;
  return [
    'logoutput: stderr',
    ...o.addresses.map((a) => `internal: ${a} port = ${port}`),
    ...o.addresses.map((a) => `external: ${a}`),
    'socksmethod: none',
    'clientmethod: none',
    'user.privileged: root',
    'user.unprivileged: nobody',
    // one keyword a line: dante's parser ends a command list at the newline
    'client pass {\n  from: 0/0 to: 0/0\n  log: error\n}',
    'socks pass {\n  from: 0/0 to: 0/0\n  command: connect udpassociate\n  log: connect disconnect error\n}',
    'socks pass {\n  from: 0/0 to: 0/0\n  command: udpreply\n  log: connect disconnect error\n}',
    '',
  ].join('\n');
}

/** Starts danted in `ns`; resolves once every address listens. */
export async function startDante(t: TeardownHost, ns: string, o: DanteOptions): Promise<NsChild> {
  const conf = join(o.dir, 'danted.conf');
  writeFileSync(conf, danteConfig(o));
  // -N 1: one negotiate/request/io child each is plenty; -p: a pid file of its own (the default is the machine's)
  const p = spawnInNs(t, ns, ['danted', '-f', conf, '-p', join(o.dir, 'danted.pid'), '-N', '1']);
  const until = Date.now() + 15_000;
  for (const a of o.addresses) {
    for (;;) {
      if (p.exitCode !== null) throw new Error(`danted exited ${p.exitCode}: ${p.stderrText()}`);
      const r = await nsExec(ns, ['ss', '-Hltn', `src ${a.includes(':') ? `[${a}]` : a}:${o.port ?? 1080}`], { allowFail: true });
      if (r.stdout.trim()) break;
      if (Date.now() > until) throw new Error(`danted does not listen on ${a}: ${p.stderrText()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return p;
}
