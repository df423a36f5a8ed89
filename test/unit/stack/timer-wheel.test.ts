// The timer wheel fires every item at most one tick after its deadline,
// however the deadline falls within a tick and however irregularly the wheel
// is advanced (it used to miss deadlines late in a tick by a full turn).
import t from 'tap';
import { TimerWheel } from '../../../src/stack/timer-wheel.js';

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
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

t.test('next(): when advance() next has work, so the caller can sleep until then', async (t) => {
  const sooner: number[] = [];
  const wheel = new TimerWheel<string>(10, 64, null, (at) => sooner.push(at));
  t.equal(wheel.next(), Infinity, 'nothing filed: no wake at all');
  wheel.advance(1003, () => {});
  wheel.schedule('b', 1207);
  t.equal(wheel.next(), 1210, 'the tick the item fires at, not its deadline (the wheel fires on ticks)');
  wheel.schedule('a', 1057);
  t.same(sooner, [1210, 1060], 'each earlier item reported once');
  wheel.schedule('c', 1500);
  t.same(sooner, [1210, 1060], 'a later one is not');
  t.equal(wheel.next(), 1060);
  const fired: string[] = [];
  wheel.advance(1059, (x) => fired.push(x));
  t.same(fired, [], 'a wake before the tick does nothing');
  wheel.advance(1060, (x) => fired.push(x));
  t.same(fired, ['a']);
  t.equal(wheel.next(), 1210, 'rescanned after firing: the next item');
  wheel.advance(1210, (x) => fired.push(x));
  t.equal(wheel.next(), 1500);
  wheel.advance(1500, (x) => fired.push(x));
  t.same(fired, ['a', 'b', 'c']);
  t.equal(wheel.next(), Infinity, 'empty again: sleep');
});

t.test('next() with a far item: exact across turns, but at most one turn away while items are filed', async (t) => {
  const wheel = new TimerWheel<number>(10, 64, () => false);
  wheel.advance(0, () => {});
  wheel.schedule(1, 5); // fires at tick 1
  wheel.schedule(2, 10_000); // many turns out, same slot family as anything
  wheel.advance(10, () => {});
  // the far item shares a slot with ticks the wheel passes before its deadline: those are not wakes
  t.equal(wheel.next(), Math.min(10_000, (1 + 64) * 10), 'capped at one turn: dead items are dropped even when nothing wakes the wheel');
  let fired = 0;
  let now = 10;
  let wakes = 0;
  while (fired === 0 && wakes < 1000) {
    now = wheel.next();
    wakes++;
    wheel.advance(now, () => fired++);
  }
  t.equal(now, 10_000, 'fires at its own tick');
  t.ok(wakes <= Math.ceil(10_000 / 640) + 1, `about one wake per turn before it (${wakes})`);
});

t.test('no item fires early or late when the caller wakes only at next()', async (t) => {
  const next = rng(7);
  const wheel = new TimerWheel<number>(10, 64);
  const due = new Map<number, number>();
  let now = 500;
  wheel.advance(now, () => {});
  for (let id = 0; id < 2000; id++) {
    const d = now + next() * (id % 5 === 0 ? 2000 : 80);
    due.set(id, d);
    wheel.schedule(id, d);
  }
  let late = 0;
  let early = 0;
  let n = 0;
  for (let wakes = 0; wakes < 10_000 && n < 2000; wakes++) {
    now = Math.max(now, wheel.next());
    wheel.advance(now, (id) => {
      n++;
      if (now < due.get(id)!) early++;
      if (now - due.get(id)! > 10) late++;
    });
  }
  t.equal(n, 2000, 'every item fired');
  t.equal(early, 0);
  t.equal(late, 0, 'none more than a tick late: next() never skipped an item');
});

t.test('purgeDead drops every dead item at once, wherever it is filed; the live ones still fire', async (t) => {
  const dead = new Set<string>();
  const w = new TimerWheel<string>(10, 64, (x) => dead.has(x));
  w.advance(0, () => {});
  for (let i = 0; i < 20; i++) w.schedule(`flow${i}`, 7_200_000 + i * 37); // far deadlines: a keepalive's
  w.schedule('soon', 50);
  for (let i = 0; i < 20; i += 2) dead.add(`flow${i}`);
  t.equal(w.purgeDead(), 10, 'the ten dead ones, without a turn of the wheel');
  t.equal(w.purgeDead(), 0, 'and only once');
  const fired: string[] = [];
  w.advance(60, (x) => fired.push(x));
  t.same(fired, ['soon'], 'a live item still fires when due');
  w.advance(7_300_000, (x) => fired.push(x));
  t.same(fired.slice(1).sort(), Array.from({ length: 10 }, (_, k) => `flow${2 * k + 1}`).sort(), 'the live far ones fire at their deadline, the purged never');
  t.equal(w.next(), Infinity, 'nothing left filed');
});
