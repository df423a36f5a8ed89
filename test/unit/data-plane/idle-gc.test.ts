// The idle collector runs one full GC only after a crowd of connections has
// gone and the gateway has stayed quiet for the delay; never for small peaks,
// never while connections stay up, once per crowd.
import t from 'tap';
import { IdleGc } from '../../../src/data-plane/idle-gc.js';

const DELAY = 45_000;

t.test('collects once, a delay after the crowd fell under a quarter of its peak', async (t) => {
  let runs = 0;
  const g = new IdleGc(() => runs++, DELAY, 1000);
  for (let s = 0; s <= 60; s++) g.sample(10_000, s * 1000);
  t.equal(runs, 0, 'not while 10,000 connections are up');
  g.sample(3000, 61_000);
  t.equal(runs, 0, 'not at 30 % of the peak');
  g.sample(2400, 62_000); // under a quarter: the quiet time starts here
  for (let s = 63; s < 62 + 45; s++) g.sample(100, s * 1000);
  t.equal(runs, 0, 'not before the delay');
  t.equal(g.sample(100, 62_000 + DELAY), true, 'at the delay');
  t.equal(runs, 1);
  for (let s = 108; s < 400; s++) g.sample(100, s * 1000);
  t.equal(runs, 1, 'once: the peak is now the idle count');
  t.equal(g.runs, 1, 'counted');
});

t.test('a rise during the quiet time starts it again', async (t) => {
  let runs = 0;
  const g = new IdleGc(() => runs++, DELAY, 1000);
  g.sample(4000, 0);
  g.sample(0, 1000);
  g.sample(2000, 30_000); // half the peak: not quiet
  g.sample(0, 31_000);
  g.sample(0, 1000 + DELAY);
  t.equal(runs, 0, 'the first quiet time was broken');
  g.sample(0, 31_000 + DELAY);
  t.equal(runs, 1, 'the second one counts');
});

t.test('small peaks and a missing gc() never collect', async (t) => {
  let runs = 0;
  const small = new IdleGc(() => runs++, DELAY, 1000);
  small.sample(999, 0);
  for (let s = 1; s < 200; s++) small.sample(0, s * 1000);
  t.equal(runs, 0, 'a peak of 999 is not a crowd');
  const none = new IdleGc(undefined, DELAY, 1000);
  none.sample(10_000, 0);
  t.equal(none.sample(0, 1000) || none.sample(0, 100_000), false, 'without --expose-gc nothing happens');
});
