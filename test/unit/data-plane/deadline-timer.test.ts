// The data plane's one timer: armed for the next deadline only, so with
// nothing due it never wakes (an idle gateway used to tick every 10 ms).
import t from 'tap';
import { performance } from 'node:perf_hooks';
import { DeadlineTimer } from '../../../src/data-plane/deadline-timer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('nothing due: no wake at all', async (t) => {
  let runs = 0;
  const timer = new DeadlineTimer(
    () => performance.now(),
    () => runs++,
    () => Infinity,
  );
  timer.arm();
  await sleep(60);
  t.equal(runs, 0);
  t.equal(timer.wakes, 0);
  timer.stop();
});

t.test('one wake per deadline, not before it, then asleep again', async (t) => {
  const start = performance.now();
  let due = start + 20;
  const ran: number[] = [];
  const timer = new DeadlineTimer(
    () => performance.now(),
    (now) => {
      if (now >= due) {
        ran.push(now);
        due = Infinity;
      }
    },
    () => due,
  );
  timer.arm();
  await sleep(100);
  t.equal(ran.length, 1, 'ran once');
  t.ok(ran[0] >= start + 20, 'not before the deadline');
  t.ok(timer.wakes <= 3, `a wake that came a little early arms again for the rest, no more (${timer.wakes})`);
  const wakes = timer.wakes;
  await sleep(50);
  t.equal(timer.wakes, wakes, 'nothing due after it: asleep');
  timer.stop();
});

t.test('sooner() pulls an armed wake earlier; a later one is ignored', async (t) => {
  const start = performance.now();
  let due = start + 10_000;
  const ran: number[] = [];
  const timer = new DeadlineTimer(
    () => performance.now(),
    (now) => {
      if (now >= due) {
        ran.push(now - start);
        due = Infinity;
      }
    },
    () => due,
  );
  timer.arm();
  due = start + 15;
  timer.sooner(due);
  timer.sooner(start + 5000);
  await sleep(80);
  t.equal(ran.length, 1, 'ran at the sooner deadline, long before the first');
  timer.stop();
});
