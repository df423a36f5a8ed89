// The import-direction rule (scripts/lint/layers.mjs) on files that are not in
// the tree: a lower layer importing an upper one, siblings importing each
// other, and a folder no layer names are each reported; imports down are not.
import t from 'tap';
import { join } from 'node:path';
import { Linter } from 'eslint';
import layers, { layerOf } from '../../../../scripts/lint/layers.mjs';

const ROOT = '/repo';
const linter = new Linter({ cwd: ROOT });
const config: Linter.Config[] = [{ files: ['**/*.ts'], plugins: { tunsteer: layers }, rules: { 'tunsteer/layers': 'error' } }];
const lint = (file: string, code: string) => linter.verify(code, config, { filename: join(ROOT, file) }).map((m) => m.message);

t.test('down is allowed, up is not', async (t) => {
  t.same(lint('src/proxy/proxy-core.ts', "import { x } from '../stack/contracts.js';\nimport { y } from '../net/address.js';"), []);
  t.same(lint('src/cli/main.ts', "export { z } from '../gateway/gateway.js';\nconst m = import('../demo/demo.js');"), []);
  const up = lint('src/stack/stack.ts', "import { ProxyCore } from '../proxy/proxy-core.js';");
  t.equal(up.length, 1);
  t.match(up[0], /src\/stack\/stack\.ts \(stack\) imports src\/proxy\/proxy-core\.ts \(proxy\): stack is below proxy/);
  t.equal(lint('src/stack/wire/tcp-view.ts', "export * from '../tcp/tcp-connection.js';").length, 1, "wire takes only the stack's contract");
  t.same(lint('src/stack/wire/tcp-view.ts', "import { Drop } from '../drop-counters.js';"), []);
  t.equal(lint('src/tun/linux-tun.ts', "const s = import('../stack/stack.js');").length, 1, 'dynamic imports count too');
});

t.test('siblings import neither way', async (t) => {
  t.match(lint('src/routing/per-host.ts', "import { a } from '../proxy/policy.js';")[0], /siblings/);
  t.match(lint('src/proxy/policy.ts', "import { a } from '../routing/per-host.js';")[0], /siblings/);
});

t.test('a file or an import outside every layer is reported', async (t) => {
  t.match(lint('src/newfolder/x.ts', 'export const x = 1;')[0], /in no layer/);
  t.match(lint('src/cli/main.ts', "import { x } from '../newfolder/x.js';")[0], /in no layer/);
  t.same(lint('test/unit/x.test.ts', "import { x } from '../../src/cli/main.js';"), [], 'tests may import anything');
});

t.test('every file of src/ has its layer', async (t) => {
  const { readdirSync } = await import('node:fs');
  const src = join(import.meta.dirname, '../../../../src');
  const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  t.ok(files.length > 100);
  t.same(
    files.filter((f) => layerOf(f.split('\\').join('/')) === null),
    [],
  );
});
