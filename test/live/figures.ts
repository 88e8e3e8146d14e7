/**
 * Figures measured on the real path (LiveKit server, WebRTC, the worker as `npm start` runs it),
 * written to bench/live-figures.json for the README and for comparison runs. Not asserted: on a
 * shared 2-core machine they say how the path behaves, not whether it is right.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIGURES_FILE = join(import.meta.dirname, '..', '..', 'bench', 'live-figures.json');

/** Merge `figures` under `name` into the figures file (one entry per measured thing). */
export function recordFigures(name: string, figures: Record<string, unknown>): void {
  mkdirSync(join(FIGURES_FILE, '..'), { recursive: true });
  const all = existsSync(FIGURES_FILE)
    ? (JSON.parse(readFileSync(FIGURES_FILE, 'utf8')) as Record<string, unknown>)
    : {};
  all[name] = { ...figures, measuredAt: new Date().toISOString() };
  writeFileSync(FIGURES_FILE, `${JSON.stringify(all, null, 2)}\n`);
}

export const ms = (value: number) => Math.round(value);
