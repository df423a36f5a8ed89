// docs/sidecar: the container recipe and the pod manifest are not run here
// (no container engine, no cluster), so their syntax and their promises are
// checked: every Containerfile instruction is known and the exec forms are
// JSON; the manifest parses, asks for NET_ADMIN and nothing privileged, and
// its tunsteer arguments and config are accepted by tunsteer's own parsers.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseCommandLine } from '../../../src/cli/args.js';
import { gatewaySettings } from '../../../src/config/settings.js';
import { loadConfigFile } from '../../../src/config/load-config.js';
import { configSchema } from '../../../src/config/schema.js';

const DIR = join(import.meta.dirname, '../../../docs/sidecar');
const INSTRUCTIONS = new Set([
  'FROM',
  'RUN',
  'CMD',
  'LABEL',
  'EXPOSE',
  'ENV',
  'ADD',
  'COPY',
  'ENTRYPOINT',
  'VOLUME',
  'USER',
  'WORKDIR',
  'ARG',
  'ONBUILD',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'SHELL',
]);

t.test('Containerfile: known instructions, FROM first, exec forms are JSON arrays, paths exist in the repo', async (t) => {
  const lines = readFileSync(join(DIR, 'Containerfile'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.trim().startsWith('#'));
  t.match(lines[0], /^FROM \S+/, 'starts with FROM');
  for (const l of lines) {
    const [word, ...rest] = l.trim().split(/\s+/);
    t.ok(INSTRUCTIONS.has(word), `known instruction: ${word}`);
    if (word === 'CMD' || word === 'ENTRYPOINT') t.ok(Array.isArray(JSON.parse(rest.join(' '))), `${word} is an exec-form JSON array`);
    if (word === 'COPY' && !rest[0].startsWith('--from')) {
      for (const src of rest.slice(0, -1)) t.doesNotThrow(() => readFileSync(join(DIR, '../..', src === 'src' ? 'src/cli/main.ts' : src)), `${src} exists`);
    }
  }
  const cmd = JSON.parse(lines.find((l) => l.startsWith('CMD'))!.slice(4));
  const parsed = parseCommandLine(cmd);
  t.equal(parsed.command, 'up', 'its default command is a `tunsteer up`');
  if (parsed.command === 'up') t.doesNotThrow(() => gatewaySettings(parsed.flags, loadConfigFile(parsed.flags.config)), 'with valid settings');
});

t.test('pod.yaml: a Pod with a tunsteer sidecar that needs only NET_ADMIN (and the ids to drop root)', async (t) => {
  const docs = parseAllDocuments(readFileSync(join(DIR, 'pod.yaml'), 'utf8'));
  for (const d of docs) t.same(d.errors, [], 'YAML parses');
  const [pod, cm] = docs.map((d) => d.toJS());
  t.equal(pod.kind, 'Pod');
  const side = pod.spec.containers.find((c: { name: string }) => c.name === 'tunsteer');
  t.ok(side, 'has the sidecar');
  t.same(side.securityContext.capabilities.add.sort(), ['NET_ADMIN', 'SETGID', 'SETUID']);
  t.same(side.securityContext.capabilities.drop, ['ALL']);
  t.notOk(side.securityContext.privileged, 'not privileged');
  t.notOk(pod.spec.hostNetwork, 'no host network');
  const volumes = new Set(pod.spec.volumes.map((v: { name: string }) => v.name));
  for (const m of side.volumeMounts) t.ok(volumes.has(m.name), `volume ${m.name} is declared`);
  t.equal(cm.kind, 'ConfigMap');
  const cfg = parseAllDocuments(cm.data['tunsteer.yaml'])[0].toJS();
  t.ok(configSchema.safeParse(cfg).success, 'the config it mounts passes the schema');
  // the args as tunsteer would parse them, with the config file's path swapped for the local copy
  const dir = mkdtempSync(join(tmpdir(), 'tsU-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const local = join(dir, 'tunsteer.yaml');
  writeFileSync(local, cm.data['tunsteer.yaml']);
  const args = side.args.map((a: string) => (a === '/etc/tunsteer/tunsteer.yaml' ? local : a));
  const up = parseCommandLine(args);
  if (up.command !== 'up') return t.fail('not a `tunsteer up`');
  t.match(gatewaySettings(up.flags, loadConfigFile(up.flags.config)), { mode: 'route-all', restart: true, stateDir: '/run/tunsteer' });
});
