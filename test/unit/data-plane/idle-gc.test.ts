// The idle collector runs one full GC after a crowd of connections has gone and
// the gateway has stayed quiet for the delay, or after a crowd has arrived and its
// count has stayed put for the delay (when the heap holds enough beyond its live
// objects); never for small crowds, once per crowd.
import t from 'tap';
import { IDLE_GC_MIN_SLACK, IdleGc, compactingGc } from '../../../src/data-plane/idle-gc.js';

const DELAY = 45_000;
const plain = (gc: () => void) => gc();
/** A heap with nothing to give back: only a crowd that went is collected. */
const noSlack = () => 0;
const slack = () => IDLE_GC_MIN_SLACK;

t.test('collects once, a delay after the crowd fell under a quarter of its peak', async (t) => {
  let runs = 0;
  const g = new IdleGc(() => runs++, DELAY, 1000, noSlack, plain);
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
  const g = new IdleGc(() => runs++, DELAY, 1000, noSlack, plain);
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
  const small = new IdleGc(() => runs++, DELAY, 1000, noSlack, plain);
  small.sample(999, 0);
  for (let s = 1; s < 200; s++) small.sample(0, s * 1000);
  t.equal(runs, 0, 'a peak of 999 is not a crowd');
  const none = new IdleGc(undefined, DELAY, 1000, slack, plain);
  none.sample(10_000, 0);
  t.equal(none.sample(0, 1000) || none.sample(0, 100_000), false, 'without --expose-gc nothing happens');
});

t.test('a crowd that arrives and stays is collected once, a delay after its count settled', async (t) => {
  let runs = 0;
  const g = new IdleGc(() => runs++, DELAY, 1000, slack, plain);
  g.sample(500, 0);
  for (let s = 1; s < 100; s++) g.sample(900, s * 1000);
  t.equal(runs, 0, 'fewer than 1,000 connections: no crowd');
  // 10,000 connect over three seconds: their count moves by more than 10 % until it stops at 102 s
  g.sample(2000, 100_000);
  g.sample(6000, 101_000);
  g.sample(10_000, 102_000);
  t.equal(runs, 0, 'not while they arrive');
  for (let s = 103; s < 102 + 45; s++) g.sample(10_000 + (s % 7) * 100, s * 1000);
  t.equal(runs, 0, 'not before the delay (a drift under 10 % is steady)');
  t.equal(g.sample(10_000, 102_000 + DELAY), true, 'at the delay');
  for (let s = 148; s < 1000; s++) g.sample(10_000, s * 1000);
  t.equal(runs, 1, 'once for this crowd');
  for (let s = 1000; s < 1100; s++) g.sample(10_600, s * 1000);
  t.equal(runs, 1, 'a few hundred more are not a new crowd');
  g.sample(2000, 1100_000);
  for (let s = 1101; s <= 1100 + 45; s++) g.sample(2000, s * 1000);
  t.equal(runs, 2, 'and when it goes, its garbage is collected as before');
});

t.test('a settled crowd is not collected when the heap holds little beyond the live objects', async (t) => {
  let runs = 0;
  let spare = 0;
  const g = new IdleGc(
    () => runs++,
    DELAY,
    1000,
    () => spare,
    plain,
  );
  for (let s = 0; s <= 100; s++) g.sample(5000, s * 1000);
  t.equal(runs, 0, 'no slack: no pause');
  spare = IDLE_GC_MIN_SLACK;
  for (let s = 101; s <= 200; s++) g.sample(5500, s * 1000);
  t.equal(runs, 0, 'the next crowd counts from the one that was not worth it');
  for (let s = 201; s <= 300; s++) g.sample(7000, s * 1000);
  t.equal(runs, 1, '1,500 more, settled, with slack: collected');
});

t.test('the collection compacts: the flag is set only for the one call', async (t) => {
  let calls = 0;
  compactingGc(() => calls++);
  t.equal(calls, 1);
  t.throws(() =>
    compactingGc(() => {
      throw new Error('gc failed');
    }),
  );
  // a full collection after it is an ordinary one again: nothing observable from JS but that it still works
  compactingGc(() => calls++);
  t.equal(calls, 2);
});
