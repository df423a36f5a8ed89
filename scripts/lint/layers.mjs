// The layers of src/ and the one direction of their imports, as an ESLint rule
// (tunsteer/layers). A layer imports its own files and those of layers below
// it; layers of one rank are siblings and import neither way. The order is the
// one docs/DECISIONS.md (The tree) gives: tun, net and the stack's wire views at
// the bottom; then the stack, the proxy core and routing, config, the data plane,
// the supervisor, `tunsteer run`, the CLI. A file under src/ that no layer names
// is reported too, so a new folder has to take its place here.
import { dirname, relative, resolve, sep } from 'node:path';

/** Low to high. `paths`: folders (trailing /) or files, relative to src/. */
export const LAYERS = [
  { name: 'net', rank: 0, paths: ['net/', 'cidr.ts'] },
  { name: 'tun', rank: 0, paths: ['tun/'] },
  // what the stack defines for everyone below and above it: its contract and its drop counters
  { name: 'stack-contract', rank: 1, paths: ['stack/contracts.ts', 'stack/drop-counters.ts'] },
  { name: 'wire', rank: 2, paths: ['stack/wire/'] },
  { name: 'stack', rank: 3, paths: ['stack/'] },
  { name: 'logging', rank: 4, paths: ['logging/'] },
  { name: 'proxy', rank: 5, paths: ['proxy/'] },
  { name: 'routing', rank: 5, paths: ['routing/'] },
  { name: 'config', rank: 6, paths: ['config/'] },
  // on main since this rule was written: whose sockets a connection is (sock_diag, /proc)
  { name: 'owner', rank: 6, paths: ['owner/'] },
  // the control API, which the data plane serves and the CLI talks to
  { name: 'control', rank: 7, paths: ['control/'] },
  { name: 'data-plane', rank: 8, paths: ['data-plane/'] },
  { name: 'gateway', rank: 9, paths: ['gateway/'] },
  { name: 'run', rank: 10, paths: ['run/'] },
  // `tunsteer doctor`: reads the system as routing would write it
  { name: 'doctor', rank: 10, paths: ['doctor/'] },
  // `tunsteer demo`'s parts are the CLI's own (its children are `tunsteer __demo-*`)
  { name: 'cli', rank: 11, paths: ['cli/', 'demo/'] },
];

/** The layer of a path relative to src/ (posix separators): the longest path that holds it. */
export function layerOf(rel) {
  let best = null;
  let bestLen = -1;
  for (const l of LAYERS) {
    for (const p of l.paths) {
      const hit = p.endsWith('/') ? rel.startsWith(p) : rel === p;
      if (hit && p.length > bestLen) {
        best = l;
        bestLen = p.length;
      }
    }
  }
  return best;
}

/** Why `from` may not import `to`, or null when it may. */
export function violation(from, to) {
  if (from === to) return null;
  if (to.rank < from.rank) return null;
  if (to.rank === from.rank) return `${from.name} and ${to.name} are siblings: neither imports the other`;
  return `${from.name} is below ${to.name}: a lower layer never imports an upper one (it defines a contract the upper one adapts)`;
}

/** @type {import('eslint').Rule.RuleModule} */
const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'imports between the folders of src/ point down only (scripts/lint/layers.mjs)' },
    schema: [{ type: 'object', properties: { srcDir: { type: 'string' } }, additionalProperties: false }],
  },
  create(context) {
    const srcDir = resolve(context.cwd, context.options[0]?.srcDir ?? 'src');
    const file = context.filename;
    const rel = relative(srcDir, file).split(sep).join('/');
    if (rel.startsWith('..')) return {};
    const from = layerOf(rel);
    if (!from) {
      return {
        Program(node) {
          context.report({ node, message: `src/${rel} is in no layer: give its folder a place in scripts/lint/layers.mjs` });
        },
      };
    }
    const check = (node, source) => {
      if (!source || typeof source.value !== 'string' || !source.value.startsWith('.')) return;
      const target = relative(srcDir, resolve(dirname(file), source.value))
        .split(sep)
        .join('/')
        .replace(/\.js$/, '.ts');
      if (target.startsWith('..')) {
        context.report({ node: source, message: `src/${rel} imports ${source.value}, outside src/` });
        return;
      }
      const to = layerOf(target);
      if (!to) {
        context.report({ node: source, message: `src/${rel} imports src/${target}, which is in no layer (scripts/lint/layers.mjs)` });
        return;
      }
      const why = violation(from, to);
      if (why) context.report({ node: source, message: `src/${rel} (${from.name}) imports src/${target} (${to.name}): ${why}` });
    };
    return {
      ImportDeclaration: (n) => check(n, n.source),
      ExportNamedDeclaration: (n) => check(n, n.source),
      ExportAllDeclaration: (n) => check(n, n.source),
      ImportExpression: (n) => check(n, n.source.type === 'Literal' ? n.source : null),
    };
  },
};

export default { rules: { layers: rule } };
