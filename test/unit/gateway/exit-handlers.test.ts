// The gateway's exit handlers on a fake process: every way out restores once and exits with its code.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { installExitHandlers, type ExitTarget } from '../../../src/gateway/exit-handlers.js';

class FakeProcess extends EventEmitter implements ExitTarget {
  exits: number[] = [];
  exitCode?: number | string | null;
  exit(code?: number): void {
    this.exits.push(code ?? 0);
  }
}

t.test('exit handlers: restore once, then the proper exit code (0 after a stop asked for with SIGINT or SIGTERM)', async (t) => {
  for (const [event, arg, code] of [
    ['SIGINT', undefined, 0],
    ['SIGTERM', undefined, 0],
    ['SIGHUP', undefined, 129],
    ['uncaughtException', new Error('boom'), 1],
    ['unhandledRejection', new Error('nope'), 1],
  ] as const) {
    const p = new FakeProcess();
    const reports: string[] = [];
    let restores = 0;
    const whys: string[] = [];
    installExitHandlers((why) => void (restores++, whys.push(why)), { target: p, report: (m) => reports.push(m) });
    p.emit(event, arg);
    p.emit('exit', code);
    p.emit(event, arg);
    t.equal(restores, 1, `${event}: restored exactly once`);
    t.strictSame(whys, [event], 'the restore is told why');
    t.strictSame(p.exits, [code, code], `${event}: exit ${code}`);
    if (arg) t.match(reports[0], arg.message);
  }
});

t.test('exit handlers: a failing restore is reported and exits 1; plain exit restores too', async (t) => {
  const p = new FakeProcess();
  const reports: string[] = [];
  installExitHandlers(
    () => {
      throw new Error('RTNETLINK answers: Operation not permitted');
    },
    { target: p, report: (m) => reports.push(m) },
  );
  p.emit('SIGTERM');
  t.strictSame(p.exits, [1]);
  t.match(reports[0], 'restoring routing failed: RTNETLINK answers: Operation not permitted');

  const q = new FakeProcess();
  let restores = 0;
  installExitHandlers(() => void restores++, { target: q, report: () => {} });
  q.emit('exit', 0);
  t.equal(restores, 1, 'process.exit() elsewhere still restores');
  t.strictSame(q.exits, [], 'and does not call exit again');

  // Function form on the real process: installed, then removed again at once.
  const counts = () => ['SIGINT', 'SIGTERM', 'SIGHUP', 'uncaughtException', 'unhandledRejection', 'exit'].map((ev) => process.listenerCount(ev));
  const was = counts();
  const off = installExitHandlers(
    () => {},
    () => {},
  );
  t.strictSame(
    counts(),
    was.map((n) => n + 1),
    'function form listens on process',
  );
  off();
  t.strictSame(counts(), was, 'and lets go');

  const f = new FakeProcess();
  const seen2: [string, string][] = [];
  installExitHandlers(
    () => {
      throw new Error('restore broke');
    },
    { target: f, onError: (err, what) => seen2.push([what, (err as Error).message]) },
  );
  f.emit('uncaughtException', new Error('boom'));
  t.strictSame(
    seen2,
    [
      ['restore', 'restore broke'],
      ['uncaughtException', 'boom'],
    ],
    'onError gets the objects, restore first',
  );
  t.strictSame(f.exits, [1]);

  const r = new FakeProcess();
  const dispose = installExitHandlers(() => void restores++, { target: r, report: () => {} });
  dispose();
  t.equal(r.eventNames().length, 0, 'dispose removes every listener');
});

t.test("onHangup: SIGHUP is `up`'s reload, not an exit; the rest still restore", async (t) => {
  const p = new FakeProcess();
  let restores = 0;
  let hangups = 0;
  installExitHandlers(() => void restores++, { target: p, onHangup: () => void hangups++ });
  p.emit('SIGHUP');
  p.emit('SIGHUP');
  t.equal(hangups, 2);
  t.equal(restores, 0, 'nothing restored');
  t.same(p.exits, [], 'no exit');
  p.emit('SIGTERM');
  t.equal(restores, 1);
  t.same(p.exits, [0], 'a stop by SIGTERM exits 0');
});
