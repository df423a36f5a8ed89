// `tunsteer reload` and the running up's reload socket, end to end in a temp
// state dir with the reload stood in: the request's force reaches it, each
// outcome gives its exit code and its words (every problem named), the socket
// is root's alone, and a gateway that is not there is said so.
import t from 'tap';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reloadSocketPath, serveReloadSocket } from '../../../src/gateway/reload-socket.js';
import { reload } from '../../../src/cli/commands/reload.js';
import type { ReloadResult } from '../../../src/data-plane/ipc.js';

const base: ReloadResult = { ok: true, problems: [], applied: [], routing: [], restart: [], ms: 4 };

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    return { code: await fn(), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

t.test('each outcome: its exit code and what it says', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tunsteer-reload-sock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const asked: { by: string; force: boolean }[] = [];
  let next: ReloadResult = base;
  const server = serveReloadSocket(
    dir,
    async (by, force) => (asked.push({ by, force }), next),
    (e) => t.fail(e.message),
  );
  t.teardown(() => void server.close());
  await new Promise((r) => (server.listening ? r(null) : server.once('listening', r)));
  await new Promise((r) => setTimeout(r, 20));
  t.equal(statSync(reloadSocketPath(dir)).mode & 0o777, 0o600, "the socket is its owner's alone");

  next = { ...base, applied: ['rules', 'limits.max_connections'], routing: ['+ ip rule add to 203.0.113.0/24 lookup main'] };
  let r = await capture(() => reload(dir, false));
  t.equal(r.code, 0);
  t.match(r.out, /reloaded in 4 ms; changed: rules, limits\.max_connections/);
  t.match(r.out, /routing \+ ip rule add to 203\.0\.113\.0\/24/);
  t.same(asked.at(-1), { by: 'tunsteer reload', force: false });

  next = { ...base, ok: false, refused: 'invalid', problems: ['c.yaml: rules[0].action: Invalid option', 'c.yaml: limits.max_connections: Too small'] };
  r = await capture(() => reload(dir, false));
  t.equal(r.code, 2, 'an invalid config: exit 2');
  t.match(r.err, /not valid; the running one is kept\n {2}c\.yaml: rules\[0\]\.action: Invalid option\n {2}c\.yaml: limits\.max_connections: Too small\n/);

  next = { ...base, ok: false, refused: 'restart', problems: ['tun.mtu: needs a restart (the TUN is open)'] };
  r = await capture(() => reload(dir, true));
  t.equal(r.code, 2, 'a setting that needs a restart: exit 2');
  t.match(r.err, /--force[\s\S]*tun\.mtu: needs a restart/);
  t.equal(asked.at(-1)?.force, true, '--force reaches the reload');

  next = { ...base, ok: false, refused: 'failed', problems: ['the data plane did not take it: gone'] };
  t.equal((await capture(() => reload(dir, false))).code, 1, 'applying failed: exit 1');

  // not a request: answered, never passed on
  const n = asked.length;
  const answer = await new Promise<string>((resolve) => {
    const s = net.connect(reloadSocketPath(dir), () => s.write('nonsense\n'));
    let b = '';
    s.on('data', (d) => (b += d));
    s.on('end', () => resolve(b));
  });
  t.match(JSON.parse(answer), { ok: false, problems: ['not a reload request'] });
  t.equal(asked.length, n);
});

t.test('no gateway: exit 1, saying where it looked', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tunsteer-reload-none-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await capture(() => reload(dir, false));
  t.equal(r.code, 1);
  t.match(r.err, new RegExp(`no gateway runs with state dir ${dir}`));
});
