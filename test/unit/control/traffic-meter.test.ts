// The traffic meter: bytes per second from running totals, sampled on a
// clock given to it; a total that shrinks (a source restarted) counts from
// zero, never negative; the history is bounded; listeners get each sample.
import t from 'tap';
import { TrafficMeter } from '../../../src/control/traffic-meter.js';

t.test("rates from the totals' growth, per second of the clock", async (t) => {
  let totals = { up: 0, down: 0 };
  const m = new TrafficMeter(async () => totals);
  const heard: unknown[] = [];
  const off = m.subscribe((s) => heard.push(s));
  await m.sample(1000);
  t.same(m.history(), [], 'the first sample is the baseline');
  totals = { up: 1000, down: 50_000 };
  await m.sample(2000);
  t.same(m.latest(), { t: 2000, up: 1000, down: 50_000 });
  totals = { up: 2000, down: 50_000 };
  await m.sample(4000);
  t.same(m.latest(), { t: 4000, up: 500, down: 0 }, 'over two seconds: half');
  totals = { up: 10, down: 10 };
  await m.sample(5000);
  t.same(m.latest(), { t: 5000, up: 0, down: 0 }, 'a smaller total is a restart, not negative traffic');
  await m.sample(5000);
  t.equal(m.history().length, 3, 'no sample for no time passed');
  off();
  totals = { up: 20, down: 20 };
  await m.sample(6000);
  t.equal(heard.length, 3, 'an unsubscribed listener hears no more');
});

t.test('the history keeps the last 600 samples', async (t) => {
  let n = 0;
  const m = new TrafficMeter(async () => ({ up: n, down: n }));
  for (let i = 0; i < 700; i++, n += 10) await m.sample(i * 1000);
  const h = m.history();
  t.equal(h.length, 600);
  t.equal(h[0].t, 100_000);
  t.equal(h.at(-1)!.t, 699_000);
});
