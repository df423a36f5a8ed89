// The progress line: where the work is and about how long is left, on a fake clock.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { Progress, clock, remainingMs } from '../../../src/cli/progress.js';

const steps = [
  { name: 'build', estimateMs: 10_000 },
  { name: 'run', estimateMs: 20_000 },
  { name: 'clean', estimateMs: 10_000 },
];

function sink(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  return { out, text: () => text };
}

t.test('clock', async (t) => {
  t.equal(clock(0), '0:00');
  t.equal(clock(65_000), '1:05');
  t.equal(clock(3_723_000), '1:02:03');
});

t.test('time left: the estimates to come, at the pace of the steps done', async (t) => {
  t.equal(remainingMs(steps, 0, 0, 0), 40_000, 'at the start: every estimate');
  t.equal(remainingMs(steps, 0, 0, 4000), 36_000, 'the current step counts down');
  // the pace: (spent + 10 s) / (estimated + 10 s), a quarter of the 40 s estimate added to both
  t.equal(remainingMs(steps, 1, 20_000, 0), 45_000, 'the first step took twice its estimate: the rest will take longer');
  t.equal(remainingMs(steps, 1, 0, 0), 15_000, 'a step that took no time: faster, not at once');
  t.equal(remainingMs(steps, 2, 300_000, 0), 40_000, 'at most 4 times the estimate');
  t.equal(remainingMs(steps, 2, 30_000, 20_000), 0, 'never below zero');
});

t.test('without a terminal: one line per step, and a last one', async (t) => {
  let now = 0;
  const s = sink();
  const p = new Progress(steps, { label: 'demo', out: s.out, tty: false, now: () => now });
  p.step('build');
  now = 10_000;
  p.step('run', 'route-all');
  now = 25_000;
  p.step('clean');
  now = 30_000;
  p.finish();
  t.equal(
    s.text(),
    [
      'demo [1/3] build · 0:00 elapsed, about 0:40 left',
      'demo [2/3] run: route-all · 0:10 elapsed, about 0:30 left',
      'demo [3/3] clean · 0:25 elapsed, about 0:09 left',
      'demo: done in 0:30',
      '',
    ].join('\n'),
  );
});

t.test('on a terminal: one line drawn in place, cleared around other output', async (t) => {
  const s = sink();
  const p = new Progress(steps, { label: 'bench', out: s.out, tty: true, now: () => 0 });
  p.step('build');
  const other = sink();
  p.print(other.out, 'a result\n');
  p.stop();
  // eslint-disable-next-line no-control-regex -- the terminal's escape sequences are what is checked
  t.match(s.text(), /^\r\x1b\[2Kbench \[1\/3\] build · 0:00 elapsed, about 0:40 left\r\x1b\[2K\r\x1b\[2Kbench \[1\/3\]/);
  t.ok(s.text().endsWith('\r\x1b[2K'), 'stop clears the line');
  t.notMatch(s.text(), /\n/, 'no new lines on a terminal');
  t.equal(other.text(), 'a result\n');
});
