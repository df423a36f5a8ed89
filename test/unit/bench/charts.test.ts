// The bench's SVG charts: one bar per measured value, sized against the
// largest, its value written beside it; an unmeasured value says so.
import t from 'tap';
import { barChart } from '../../../bench/charts.js';

t.test('bars scale to the largest value and carry their figures', async (t) => {
  const svg = barChart('Throughput', ['up', 'down'], 'Gbit/s', [
    { label: 'kernel', values: [20, 10] },
    { label: 'tunsteer <x>', values: [5, null] },
  ]);
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const widths = [...svg.matchAll(/<rect x="300" y="\d+" width="([\d.]+)" height="12"/g)].map((m) => Number(m[1]));
  t.same(widths, [420, 210, 105], 'one bar per measured value, proportional');
  t.match(svg, />20\.00</);
  t.match(svg, />5\.00</);
  t.match(svg, /not measured/);
  t.match(svg, /tunsteer &lt;x&gt;/, 'labels escaped');
});
