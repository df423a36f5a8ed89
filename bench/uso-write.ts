// What USO on write would save (issue 16 item 1): bench/uso-write.py in a
// namespace of its own writes the same datagrams to a TUN one per write and
// K per write as UDP GSO packets, and prints the writer's CPU per datagram.
//   node --import tsx bench/uso-write.ts [--size 1200] [--count 50000] [--ks 1,4,16,32]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { createNetns, nsExec } from '../test/helpers/netns.js';
import { ROOT } from '../test/helpers/topology.js';
import { machineLoad, runBench, teardownHost } from './bench-kit.js';

const { values } = parseArgs({ options: { size: { type: 'string', default: '1200' }, count: { type: 'string', default: '50000' }, ks: { type: 'string', default: '1,4,16,32' } } });
const { host, cleanup } = teardownHost();

runBench(async () => {
  const load = machineLoad();
  const ns = await createNetns(host, 'tsUso-');
  const ks = values.ks.split(',').map(Number);
  const r = await nsExec(ns, ['python3', join(ROOT, 'bench/uso-write.py'), 'tsuw0', values.size, values.count, ...ks.map(String)], { timeoutMs: 300_000 });
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { k: number; datagrams: number; writes: number; cpuUsPerDatagram: number; wallUsPerDatagram: number; received: number; wrongSize: number });
  console.log(`UDP datagrams written to a TUN, ${values.size} bytes, K per write (K > 1: one UDP GSO packet); ${new Date().toISOString()}; ${load.end().text}\n`);
  console.log('| K per write | datagrams | received | writer CPU µs per datagram | wall µs per datagram |\n| ---: | ---: | ---: | ---: | ---: |');
  for (const x of rows)
    console.log(
      `| ${x.k} | ${x.datagrams} | ${x.received}${x.wrongSize ? ` (+${x.wrongSize} of another size)` : ''} | ${x.cpuUsPerDatagram.toFixed(2)} | ${x.wallUsPerDatagram.toFixed(2)} |`,
    );
}, cleanup);
