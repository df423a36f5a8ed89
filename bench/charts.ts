// The bench table drawn as SVG bar charts (issue 16): a reader compares bars
// faster than columns. Plain SVG text, no dependency: grouped horizontal bars,
// one group per path, one bar per series, each labelled with its value.

export interface BarGroup {
  label: string;
  /** One value per series; NaN or null: not measured (no bar). */
  values: (number | null)[];
}

const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Grouped horizontal bars: title, the series' names, a unit for the axis, the groups. */
export function barChart(title: string, series: string[], unit: string, groups: BarGroup[], digits = 2): string {
  const labelW = 300;
  const plotW = 420;
  const bar = 14;
  const gap = 10;
  const top = 48;
  const groupH = series.length * bar + gap;
  const height = top + groups.length * groupH + 24;
  const width = labelW + plotW + 90;
  const max = Math.max(1e-9, ...groups.flatMap((g) => g.values.filter((v): v is number => v !== null && Number.isFinite(v))));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  series.forEach((s, i) => {
    const x = labelW + i * 130;
    out.push(`<rect x="${x}" y="28" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`, `<text x="${x + 14}" y="37">${esc(s)}</text>`);
  });
  groups.forEach((g, gi) => {
    const y0 = top + gi * groupH;
    out.push(`<text x="${labelW - 6}" y="${y0 + (series.length * bar) / 2 + 4}" text-anchor="end">${esc(g.label)}</text>`);
    g.values.forEach((v, si) => {
      const y = y0 + si * bar;
      if (v === null || !Number.isFinite(v)) {
        out.push(`<text x="${labelW + 4}" y="${y + bar - 3}" fill="#888">not measured</text>`);
        return;
      }
      const w = Math.max(1, (v / max) * plotW);
      out.push(
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${bar - 2}" fill="${COLORS[si % COLORS.length]}"/>`,
        `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + bar - 3}">${v.toFixed(digits)}</text>`,
      );
    });
  });
  out.push(`<text x="${labelW}" y="${height - 6}" fill="#555">${esc(unit)}</text>`, '</svg>');
  return out.join('\n') + '\n';
}
