// The server-first checks every mode runs (test/e2e/server-first-*.test.ts):
// the greeting service 200 times per family, byte-exact; 50 `ssh host true`;
// a 50 MB scp each way, sha256 equal. `exec` runs a client command wherever
// the mode puts clients (a namespace, or under `tunsteer run --`).
import type { Test } from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecResult } from '../netns.js';
import { fileSha, greetingClientArgv, randomFile, type Sshd } from './servers.js';

export type Exec = (argv: string[], timeoutMs?: number) => Promise<ExecResult>;

/** `idleMs`: how long one connection may stay silent before it counts as ETIMEDOUT. */
export async function greetingChecks(t: Test, exec: Exec, hosts: { v4: string; v6: string }, sha: string, count = 200, idleMs = 15_000): Promise<void> {
  for (const [family, host] of [
    ['IPv4', hosts.v4],
    ['IPv6', hosts.v6],
  ] as const) {
    const r = await exec(greetingClientArgv(host, count, sha, idleMs), 120_000 + idleMs);
    const got = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { exact?: number; wrong?: number[]; errors?: string[] };
    const why = got.exact === count ? '' : `; wrong lengths ${JSON.stringify(got.wrong)}, errors ${JSON.stringify(got.errors)} ${r.stderr.slice(-500)}`;
    t.equal(got.exact, count, `${family}: ${count} of ${count} greetings byte-exact (${host})${why}`);
  }
}

/** Runs `sessions` ssh sessions one after another in one shell (so `tunsteer run --` starts one gateway); counts those that exit 0. */
export async function sshChecks(t: Test, exec: Exec, sshd: Sshd, host: string, opts: { sessions?: number; mb?: number } = {}): Promise<void> {
  const ssh = ['ssh', ...sshd.opts].join(' ');
  const sessions = opts.sessions ?? 50;
  const loop = `ok=0; for i in $(seq ${sessions}); do ${ssh} root@${host} true && ok=$((ok+1)); done; echo "ok=$ok"`;
  const r = await exec(['sh', '-c', loop], 300_000);
  const done = new RegExp(`ok=${sessions}\\b`).test(r.stdout);
  t.ok(done, `${sessions} \`ssh ${host} true\` sessions exit 0${done ? '' : `: ${r.stdout.trim()} ${r.stderr.slice(-300)}`}`);
  if (opts.mb === 0) return;

  const mb = opts.mb ?? 50;
  const target = `root@${host.includes(':') ? `[${host}]` : host}`;
  const up = join(sshd.dir, `up-${process.pid}-${Date.now()}.bin`);
  const upSha = randomFile(up, mb);
  const remote = `${up}.remote`;
  const down = `${up}.down`;
  try {
    const u = await exec(['scp', ...sshd.opts, '-q', up, `${target}:${remote}`], 300_000);
    t.equal(u.code, 0, u.code === 0 ? 'scp up' : `scp up: ${u.stderr.slice(-300)}`);
    t.equal(fileSha(remote), upSha, `${mb} MB up by scp: sha256 equal`);
    const downSha = randomFile(remote, mb);
    const d = await exec(['scp', ...sshd.opts, '-q', `${target}:${remote}`, down], 300_000);
    t.equal(d.code, 0, d.code === 0 ? 'scp down' : `scp down: ${d.stderr.slice(-300)}`);
    t.equal(fileSha(down), downSha, `${mb} MB down by scp: sha256 equal`);
  } finally {
    for (const f of [up, remote, down]) rmSync(f, { force: true });
  }
}
