// The suspend/stall detector on a fake clock: no sleeping, no real suspend.
import t from 'tap';
import { SleepDetector, type Clocks } from '../../../src/gateway/sleep-detector.js';

function fakeClocks() {
  const c = { mono: 5000, boot: 90_000 };
  const clocks: Clocks = { mono: () => c.mono, boot: () => c.boot };
  return { c, clocks, tick: (monoMs: number, bootMs = monoMs) => ((c.mono += monoMs), (c.boot += bootMs)) };
}
const opts = { intervalMs: 1000, suspendMs: 2000, lateMs: 5000 };

t.test('ticks on time, with the jitter of a busy loop: nothing', async (t) => {
  const { clocks, tick } = fakeClocks();
  const d = new SleepDetector(clocks, opts);
  for (const ms of [1000, 1003, 1900, 3500, 998]) {
    tick(ms, ms + 10); // /proc/uptime's 10 ms steps
    t.equal(d.check(), null, `a ${ms} ms tick`);
  }
});

t.test('a suspend: boot time jumps, monotonic does not', async (t) => {
  const { clocks, tick } = fakeClocks();
  const d = new SleepDetector(clocks, opts);
  tick(1000, 1000 + 3_600_000);
  t.same(d.check(), { kind: 'suspend', sleptMs: 3_600_000 });
  tick(1000);
  t.equal(d.check(), null, 'once only');
});

t.test('timers firing late: the process did not run (SIGSTOP, a paused VM)', async (t) => {
  const { clocks, tick } = fakeClocks();
  const d = new SleepDetector(clocks, opts);
  tick(8000);
  t.same(d.check(), { kind: 'late-timers', sleptMs: 7000 });
  tick(1000);
  t.equal(d.check(), null);
});

t.test('a short suspend below the threshold is not a wake', async (t) => {
  const { clocks, tick } = fakeClocks();
  const d = new SleepDetector(clocks, opts);
  tick(1000, 2500);
  t.equal(d.check(), null);
});
