// The state dir's files: written whole (tmp + rename), read back as written;
// none, or an unreadable one, reads as nothing.
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStatus, statusPath, writeStatus, type StatusSnapshot } from '../../../../src/gateway/state/status-file.js';
import { loadFakeIps, saveFakeIps } from '../../../../src/gateway/state/fake-ip-file.js';

const dir = mkdtempSync(join(tmpdir(), 'tunsteer-state-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('status.json', async (t) => {
  t.equal(readStatus(dir), null, 'none yet');
  const s: StatusSnapshot = {
    pid: 1,
    mode: 'route-all',
    tun: { name: 'tun0', mtu: 1500, address: '198.18.0.1/30' },
    uplink: { dev: 'eth0', source: '192.0.2.1' },
    startedAt: 'a',
    updatedAt: 'b',
    counters: { connections: 3 },
    drops: {},
  };
  writeStatus(dir, s);
  t.same(readStatus(dir), s);
  t.same(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary file left',
  );
  writeFileSync(statusPath(dir), '{ half');
  t.equal(readStatus(dir), null, 'unreadable reads as none');
});

t.test('fake-ip.json', async (t) => {
  const sub = join(dir, 'fresh');
  t.equal(loadFakeIps(sub), undefined, 'none yet (no dir even)');
  saveFakeIps(sub, { v: 1, names: ['a.example'] });
  t.same(loadFakeIps(sub), { v: 1, names: ['a.example'] }, 'the dir is made, the data read back');
});
