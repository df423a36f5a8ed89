// Which resolvers the gateway forwards to, and per-host's override kept in place.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemResolvers } from '../../../src/routing/resolvers.js';
import { overrideResolvConf, reassertOverride } from '../../../src/routing/per-host.js';
import type { JournaledStep } from '../../../src/routing/route-journal.js';
import { journalData } from './fixtures/journal-data.js';

const dir = mkdtempSync(join(tmpdir(), 'tsu-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

t.test("resolv.conf's nameservers; behind systemd-resolved's stub, the servers it uses itself", async (t) => {
  const plain = file('plain.conf', 'nameserver 192.0.2.53\nnameserver 2001:db8::53\n');
  t.same(systemResolvers(plain, join(dir, 'none')), { upstreams: ['192.0.2.53', '2001:db8::53'], files: [plain] });
  const stub = file('stub.conf', 'nameserver 127.0.0.53\noptions edns0 trust-ad\n');
  const resolved = file('resolved.conf', 'nameserver 198.51.100.53\n');
  t.same(systemResolvers(stub, resolved), { upstreams: ['198.51.100.53'], files: [stub, resolved] }, 'forwarding to the stub would loop in route-all');
  t.same(systemResolvers(stub, join(dir, 'none')).upstreams, ['127.0.0.53'], 'no list behind it: the stub it is');
  t.same(systemResolvers(join(dir, 'missing'), resolved).upstreams, [], 'no file: no resolver');
});

t.test('per-host: a rewrite becomes the newest original, the override goes back; our own write changes nothing', async (t) => {
  const first = '# lease 1\nsearch a.example\nnameserver 192.0.2.53\n';
  const path = file('resolv.conf', overrideResolvConf(first, '198.18.0.2'));
  let steps: JournaledStep[] = [
    { kind: 'ip', do: ['-4', 'route', 'add', '198.18.0.0/15', 'dev', 'tun0'], undo: ['-4', 'route', 'del', '198.18.0.0/15', 'dev', 'tun0'], desc: 'pool' },
    { kind: 'file', path, content: overrideResolvConf(first, '198.18.0.2'), desc: 'override', old: Buffer.from(first).toString('base64') },
  ];
  const writes: number[] = [];
  const journal = {
    get data() {
      return journalData(steps, 'per-host');
    },
    record(s: readonly JournaledStep[]) {
      steps = [...s];
      writes.push(Date.now());
    },
  };
  t.same(reassertOverride(journal, path, '198.18.0.2', readFileSync(path, 'utf8')), { rewritten: false, upstreams: ['192.0.2.53'] }, 'our own text');
  t.equal(writes.length, 0);
  const second = '# lease 2\nsearch b.example\nnameserver 192.0.2.54\nnameserver 198.18.0.2\n';
  writeFileSync(path, second);
  t.same(reassertOverride(journal, path, '198.18.0.2', second), { rewritten: true, upstreams: ['192.0.2.54'] }, 'our own address is never an upstream');
  t.equal(Buffer.from((steps[1] as { old: string }).old, 'base64').toString(), second, 'the journal keeps the newest original');
  t.equal(readFileSync(path, 'utf8'), overrideResolvConf(second, '198.18.0.2'), 'the override is back, with the new search line');
  t.match(readFileSync(path, 'utf8'), /^search b\.example$/m);
});
