// The timer wheel fires every item at most one tick after its deadline,
// however the deadline falls within a tick and however irregularly the wheel
// is advanced (it used to miss deadlines late in a tick by a full turn).
import t from 'tap';
import { TimerWheel } from '../../../src/stack/timer-wheel.js';

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 2 ** 32;
  };
}

t.test('no item fires early, none more than one tick late', async (t) => {
  const next = rng(42);
  const tick = 10;
  const wheel = new TimerWheel<number>(tick, 64);
  const due = new Map<number, number>();
  const firedAt = new Map<number, number>();
  let now = 1000.3;
  wheel.advance(now, () => {});
  for (let id = 0; id < 20_000; id++) {
    // deadlines from "now" to several turns ahead, at any fraction of a tick
    const d = now + next() * (id % 10 === 0 ? 64 * tick * 3 : 50);
    due.set(id, d);
    wheel.schedule(id, d);
    if (id % 7 === 0) {
      now += next() * 13; // irregular advances, sometimes inside one tick
      wheel.advance(now, (item) => firedAt.set(item, now));
    }
  }
  for (let k = 0; k < 400; k++) {
    now += next() * 13;
    wheel.advance(now, (item) => firedAt.set(item, now));
  }
  let early = 0;
  let late = 0;
  let missing = 0;
  for (const [id, d] of due) {
    const f = firedAt.get(id);
    if (f === undefined) missing++;
    else if (f < d) early++;
    else if (f - d > tick + 13) late++; // one tick, plus the advance step that reached it
  }
  t.equal(missing, 0, 'every item fired');
  t.equal(early, 0, 'none before its deadline');
  t.equal(late, 0, 'none a turn late');
});

t.test('a deadline late in the current tick fires on the next advance past it', async (t) => {
  const wheel = new TimerWheel<string>(10, 4096);
  wheel.advance(1003, () => {});
  wheel.schedule('a', 1007);
  const fired: string[] = [];
  wheel.advance(1005, (x) => fired.push(x));
  t.same(fired, [], 'not yet');
  wheel.advance(1011, (x) => fired.push(x));
  t.same(fired, ['a']);
});

t.test('a dead item is dropped when the wheel passes its slot, not kept until its far deadline', async (t) => {
  const dead = new Set<number>();
  const wheel = new TimerWheel<number>(10, 64, (i) => dead.has(i));
  const fired: number[] = [];
  wheel.advance(0, () => {});
  wheel.schedule(1, 7_200_000); // a keepalive two hours out
  wheel.schedule(2, 7_200_000);
  dead.add(1);
  const slots = (wheel as unknown as { slots: number[][] }).slots;
  const held = () => slots.reduce((n, s) => n + s.length, 0);
  t.equal(held(), 2);
  wheel.advance(640, (i) => fired.push(i)); // one full turn
  t.equal(held(), 1, 'the dead one is gone after a turn');
  t.same(fired, []);
  wheel.advance(7_200_000, (i) => fired.push(i));
  t.same(fired, [2], 'the live one still fires at its deadline');
});
