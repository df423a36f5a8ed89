// A multi-queue TUN (IFF_MULTI_QUEUE, one fd per queue): our steering program
// (src/tun/native/steering.c) spreads flows over the queues and keeps every
// packet of one flow on one queue, a UDP datagram's fragments included, which
// is what lets each data-plane worker own its flows with no shared table.
import t from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createNetns, nsExec } from '../helpers/netns.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const helper = fileURLToPath(new URL('../helpers/tun-mq-check.ts', import.meta.url));

if (process.getuid?.() !== 0 || !existsSync('/dev/net/tun')) t.plan(0, 'needs root and /dev/net/tun');

for (const queues of [2, 4]) {
  t.test(`${queues} queues: flows spread over them, each flow on one`, async (t) => {
    const ns = await createNetns(t, 'tsQ-');
    const r = await nsExec(ns, [process.execPath, '--import', 'tsx', helper, String(queues)], { cwd: root, timeoutMs: 60_000 });
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      fds: number;
      perQueue: number[];
      flows: number;
      split: string[];
      fragments: number;
      oneHostSynQueues: number;
      steering: boolean;
    };
    t.equal(out.fds, queues, 'one fd per queue');
    t.equal(out.steering, true, 'our steering program is attached');
    t.ok(out.flows >= 64, `the flows reached the TUN (${out.flows})`);
    t.ok(out.fragments >= 64 * 2, `the large datagrams arrived in fragments (${out.fragments})`);
    t.same(out.split, [], 'no flow seen on two queues, fragments included');
    t.ok(out.oneHostSynQueues > 1, `connections to one host spread over queues by their ports (${out.oneHostSynQueues})`);
    t.equal(out.perQueue.filter((n) => n > 0).length, queues, `every queue got packets (${out.perQueue.join(', ')})`);
    const after = await nsExec(ns, ['ip', 'link', 'show', 'tsTmq0'], { allowFail: true });
    t.not(after.code, 0, 'the device is gone once every queue fd is closed');
  });
}
