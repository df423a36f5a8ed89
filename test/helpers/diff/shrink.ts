// Greedy shrinking of a failing scenario: try smaller candidates (fewer
// phases or datagrams, smaller sizes, no pauses, no slow reader, shorter
// tails) and keep the first that still fails, until none does or time is up.
// fast-check's own shrinker needs the generation context, which a scenario
// sampled and run concurrently no longer has.
import { normalize, type Scenario, type TcpScenario } from './scenario.js';

function* candidates(s: Scenario): Generator<Scenario> {
  if (s.proto === 'udp') {
    for (let i = 0; i < s.datagrams.length && s.datagrams.length > 1; i++) yield { ...s, datagrams: s.datagrams.filter((_, j) => j !== i) };
    for (let i = 0; i < s.datagrams.length; i++) {
      for (const n of smaller(s.datagrams[i], 0)) yield { ...s, datagrams: s.datagrams.map((d, j) => (j === i ? n : d)) };
    }
    return;
  }
  const t = (x: TcpScenario) => normalize(x);
  for (let i = 0; i < s.phases.length; i++) yield t({ ...s, phases: s.phases.filter((_, j) => j !== i) });
  if (s.slow) yield t({ ...s, slow: null });
  for (let i = 0; i < s.phases.length; i++) {
    const p = s.phases[i];
    if (p.pause) yield t({ ...s, phases: s.phases.map((q, j) => (j === i ? { ...q, pause: 0 } : q)) });
    for (const n of smaller(p.n, 1)) yield t({ ...s, phases: s.phases.map((q, j) => (j === i ? { ...q, n } : q)) });
  }
  const e = s.end;
  if (e.kind === 'fin') for (const tail of smaller(e.tail, 0)) yield t({ ...s, end: { ...e, tail } });
  if (e.kind === 'unread') for (const unread of smaller(e.unread, 1)) yield t({ ...s, end: { ...e, unread } });
}

/** Halving steps towards min, smallest first. */
function smaller(n: number, min: number): number[] {
  const out: number[] = [];
  for (let d = n - min; d > 0; d = Math.floor(d / 2)) out.push(n - d);
  return out.filter((v) => v < n);
}

export async function shrink(s: Scenario, fails: (c: Scenario) => Promise<boolean>, until: number): Promise<Scenario> {
  let best = s;
  let progress = true;
  while (progress && Date.now() < until) {
    progress = false;
    for (const c of candidates(best)) {
      if (Date.now() >= until) break;
      if (JSON.stringify(c) === JSON.stringify(best)) continue;
      if (await fails(c)) {
        best = c;
        progress = true;
        break;
      }
    }
  }
  return best;
}
