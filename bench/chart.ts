/**
 * The handoff timeline as an SVG: one row per variant and model latency, time running from the
 * end of the caller's line; the old agent's audio (the bridge line or filler) in blue, the
 * specialist's in amber, the silence before the specialist shaded. Each row is the call whose
 * specialist came in at the median of its variant.
 */
import type { HeardSegment } from './handoffCall.js';

export interface ChartRow {
  label: string;
  segments: HeardSegment[];
  specialistMs: number;
}

const ROW = 30;
const LEFT = 330;
const RIGHT = 30;
const TOP = 40;
const WIDTH = 1100;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function renderHandoffChart(rows: ChartRow[], title: string): string {
  const tailMs = 800; // a little of the specialist's audio after it starts
  const maxMs = Math.max(1000, ...rows.map((r) => r.specialistMs + tailMs));
  const stepMs = maxMs > 8000 ? 2000 : maxMs > 4000 ? 1000 : 500;
  const scale = (WIDTH - LEFT - RIGHT) / maxMs;
  const x = (ms: number) => LEFT + Math.max(0, ms) * scale;
  const height = TOP + rows.length * ROW + 50;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
  ];
  for (let ms = 0; ms <= maxMs; ms += stepMs) {
    out.push(
      `<line x1="${x(ms)}" y1="${TOP - 6}" x2="${x(ms)}" y2="${TOP + rows.length * ROW}" stroke="#e5e7eb"/>`,
      `<text x="${x(ms)}" y="${TOP + rows.length * ROW + 16}" text-anchor="middle" fill="#6b7280">${(ms / 1000).toFixed(1)} s</text>`,
    );
  }
  rows.forEach((row, i) => {
    const y = TOP + i * ROW;
    out.push(`<text x="${LEFT - 8}" y="${y + 18}" text-anchor="end">${escape(row.label)}</text>`);
    // Silence until the specialist: everything not covered by audio.
    out.push(
      `<rect x="${x(0)}" y="${y + 8}" width="${x(row.specialistMs) - x(0)}" height="10" fill="#f3f4f6"/>`,
    );
    for (const s of row.segments) {
      const end = s.who === 'new' ? Math.min(s.endMs, s.startMs + tailMs) : s.endMs;
      const fill = s.who === 'new' ? '#d97706' : '#2563eb';
      out.push(
        `<rect x="${x(s.startMs)}" y="${y + 4}" width="${Math.max(1, x(end) - x(s.startMs))}" height="18" fill="${fill}" rx="2"/>`,
      );
    }
    out.push(
      `<text x="${x(row.specialistMs) + 4}" y="${y + 17}" fill="#111827">${(row.specialistMs / 1000).toFixed(2)} s</text>`,
    );
  });
  const legendY = TOP + rows.length * ROW + 34;
  out.push(
    `<rect x="${LEFT}" y="${legendY - 10}" width="12" height="12" fill="#2563eb"/>`,
    `<text x="${LEFT + 18}" y="${legendY}">old agent (bridge line / filler)</text>`,
    `<rect x="${LEFT + 220}" y="${legendY - 10}" width="12" height="12" fill="#d97706"/>`,
    `<text x="${LEFT + 238}" y="${legendY}">specialist</text>`,
    `<rect x="${LEFT + 330}" y="${legendY - 10}" width="12" height="12" fill="#f3f4f6" stroke="#d1d5db"/>`,
    `<text x="${LEFT + 348}" y="${legendY}">until the specialist; 0 = end of the caller's line</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
