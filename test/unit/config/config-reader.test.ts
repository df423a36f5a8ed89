// The config file's reader (config-reader.ts): made only for a file, and a
// reload reads the file as it is then. That the commands reach the parser
// only through it is checked by test/unit/data-plane/lean-imports.test.ts.
import t from 'tap';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { configReader } from '../../../src/config/config-reader.js';

t.test('configReader: no file reads nothing; a file is read, and read again each call', async (t) => {
  t.same((await configReader(undefined))(undefined), {});
  const dir = mkdtempSync(join(tmpdir(), 'tunsteer-cfgreader-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'mode: per-host\nhosts: [a.example]\n');
  const read = await configReader(file);
  t.match(read(file), { mode: 'per-host', hosts: ['a.example'] });
  writeFileSync(file, 'mode: route-all\n');
  t.match(read(file), { mode: 'route-all' }, 'a reload sees the file as it is now');
});
