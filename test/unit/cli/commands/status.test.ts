// `tunsteer status`: bytes in binary units, the JSON with no gateway says where it looked.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { counterText, humanBytes, statusReport } from '../../../../src/cli/commands/status.js';
import { currentNetns, journalPath } from '../../../../src/routing/route-journal.js';
import { statusPath } from '../../../../src/gateway/state/status-file.js';

const dir = mkdtempSync(join(tmpdir(), 'tunsteer-status-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('bytes are shown in binary units, counts as they are', async (t) => {
  t.equal(humanBytes(512), '512 B');
  t.equal(humanBytes(91_553_792), '87.3 MiB');
  t.equal(humanBytes(3 * 1024 ** 3), '3.0 GiB');
  t.equal(counterText('mem_rss', 91_553_792), '87.3 MiB');
  t.equal(counterText('proxy_bytesUp', 2048), '2.0 KiB');
  t.equal(counterText('mem_idle_gcs', 3), '3', 'a count stays a count');
  t.equal(counterText('connections', 2048), '2048');
});

t.test("a running gateway's memory counters read in MiB", async (t) => {
  const stateDir = join(dir, 'live');
  mkdirSync(stateDir);
  const now = new Date().toISOString();
  writeFileSync(
    journalPath(stateDir),
    JSON.stringify({ version: 1, mode: 'route-all', tunName: 'ts0', pid: process.pid, netns: currentNetns(), createdAt: now, updatedAt: now, steps: [], applied: 0, upAt: now }),
  );
  writeFileSync(
    statusPath(stateDir),
    JSON.stringify({
      pid: process.pid,
      mode: 'route-all',
      tun: { name: 'ts0', mtu: 1500, address: '198.18.0.1/30' },
      uplink: { dev: 'eth0', source: '192.0.2.1' },
      startedAt: now,
      updatedAt: now,
      counters: { mem_rss: 91_553_792, connections: 3 },
      drops: {},
    }),
  );
  const r = statusReport(stateDir, false);
  t.equal(r.code, 0, r.text);
  t.match(r.text, /mem_rss +87\.3 MiB/);
  t.notMatch(r.text, /91553792/);
  t.match(r.text, /connections +3\n/);
  const j = JSON.parse(statusReport(stateDir, true).text);
  t.equal(j.status.counters.mem_rss, 91_553_792, 'JSON keeps the raw number');
});

t.test('no gateway: the JSON says where it looked and why', async (t) => {
  const stateDir = join(dir, 'none');
  const r = statusReport(stateDir, true);
  t.equal(r.code, 1);
  const j = JSON.parse(r.text);
  t.equal(j.running, false);
  t.equal(j.stateDir, stateDir);
  t.match(j.reason, new RegExp(`no gateway runs with state dir ${stateDir}`));
  t.match(statusReport(stateDir, false).text, new RegExp(`no gateway runs with state dir ${stateDir}`));
});
