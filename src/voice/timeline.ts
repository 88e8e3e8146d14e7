/**
 * `--timeline FILE.svg`: a picture of a voice call. One lane for the caller and one per agent
 * that spoke, the machine's states in a band underneath, a marker at every handoff, and every
 * silence over a second (nobody on the line) shaded, with its length.
 */
import type { VoiceEvent } from './voiceCall.js';

/** Silences longer than this are highlighted. */
export const LONG_SILENCE_MS = 1000;

const LANE_HEIGHT = 28;
const LEFT = 90;
const RIGHT = 20;
const TOP = 30;
const WIDTH = 1100;

const COLOURS: Record<string, string> = {
  caller: '#6b7280',
  reception: '#2563eb',
  billing: '#d97706',
  support: '#059669',
  sales: '#9333ea',
};
const STATE_COLOURS: Record<string, string> = {
  greeting: '#dbeafe',
  intent: '#bfdbfe',
  billing: '#fde68a',
  support: '#a7f3d0',
  sales: '#e9d5ff',
  transferring: '#fecaca',
  ended: '#e5e7eb',
};

interface Span {
  startMs: number;
  endMs: number;
}

/** Stretches of the call with no one speaking, longer than {@link LONG_SILENCE_MS}. */
export function longSilences(events: readonly VoiceEvent[], endMs: number): Span[] {
  const busy = events
    .flatMap((e) => (e.type === 'audio' || e.type === 'speech' ? [{ ...e }] : []))
    .map((e) => ({ startMs: e.startMs, endMs: e.endMs }))
    .sort((a, b) => a.startMs - b.startMs);
  const silences: Span[] = [];
  let cursor = 0;
  for (const span of busy) {
    if (span.startMs - cursor > LONG_SILENCE_MS)
      silences.push({ startMs: cursor, endMs: span.startMs });
    cursor = Math.max(cursor, span.endMs);
  }
  if (endMs - cursor > LONG_SILENCE_MS) silences.push({ startMs: cursor, endMs });
  return silences;
}

export function renderTimeline(events: readonly VoiceEvent[]): string {
  const endMs = Math.max(
    1000,
    ...events.map((e) => (e.type === 'audio' || e.type === 'speech' ? e.endMs : e.atMs)),
  );
  const agents = [
    ...new Set(events.flatMap((e) => (e.type === 'audio' ? [e.agent] : []))),
  ] as string[];
  const lanes = ['caller', ...agents];
  const x = (ms: number) => LEFT + ((WIDTH - LEFT - RIGHT) * ms) / endMs;
  const laneY = (i: number) => TOP + i * LANE_HEIGHT;
  const statesY = laneY(lanes.length) + 8;
  const axisY = statesY + LANE_HEIGHT + 6;
  const height = axisY + 30;
  const parts: string[] = [];
  const esc = (text: string) =>
    text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="18" font-weight="bold">Voice call timeline (${seconds(endMs)})</text>`,
  );
  for (const silence of longSilences(events, endMs)) {
    const w = x(silence.endMs) - x(silence.startMs);
    parts.push(
      `<rect x="${x(silence.startMs)}" y="${TOP - 4}" width="${w}" height="${statesY - TOP}" fill="#fee2e2"><title>silence ${seconds(silence.endMs - silence.startMs)}</title></rect>`,
      `<text x="${x(silence.startMs) + w / 2}" y="${statesY - 8}" text-anchor="middle" fill="#b91c1c" font-size="10">${seconds(silence.endMs - silence.startMs)}</text>`,
    );
  }
  lanes.forEach((lane, i) => {
    parts.push(
      `<text x="${LEFT - 8}" y="${laneY(i) + 17}" text-anchor="end">${lane}</text>`,
      `<line x1="${LEFT}" y1="${laneY(i) + LANE_HEIGHT - 2}" x2="${WIDTH - RIGHT}" y2="${laneY(i) + LANE_HEIGHT - 2}" stroke="#f3f4f6"/>`,
    );
  });
  for (const event of events) {
    if (event.type !== 'audio' && event.type !== 'speech') continue;
    const lane = event.type === 'speech' ? 0 : lanes.indexOf(event.agent);
    const colour = COLOURS[event.type === 'speech' ? 'caller' : event.agent] ?? '#374151';
    const title =
      event.type === 'speech'
        ? `caller: "${event.heard}"`
        : `${event.agent} (${event.voice ?? 'unknown voice'})${event.interrupted ? ', interrupted' : ''}`;
    parts.push(
      `<rect x="${x(event.startMs)}" y="${laneY(lane) + 4}" width="${Math.max(1, x(event.endMs) - x(event.startMs))}" height="${LANE_HEIGHT - 10}" rx="3" fill="${colour}"><title>${esc(title)} ${seconds(event.startMs)}–${seconds(event.endMs)}</title></rect>`,
    );
    if (event.type === 'audio' && event.interrupted) {
      parts.push(
        `<text x="${x(event.endMs) + 2}" y="${laneY(lane) + 17}" fill="#b91c1c" font-size="10">✕</text>`,
      );
    }
  }
  // The machine's states, and a marker at each handoff.
  const states = events.filter((e) => e.type === 'state');
  parts.push(`<text x="${LEFT - 8}" y="${statesY + 17}" text-anchor="end">state</text>`);
  states.forEach((state, i) => {
    const next = states[i + 1]?.atMs ?? endMs;
    parts.push(
      `<rect x="${x(state.atMs)}" y="${statesY}" width="${Math.max(1, x(next) - x(state.atMs))}" height="${LANE_HEIGHT - 4}" fill="${STATE_COLOURS[state.state] ?? '#f3f4f6'}" stroke="#ffffff"/>`,
      `<text x="${x(state.atMs) + 4}" y="${statesY + 16}" font-size="11">${esc(state.state)}</text>`,
    );
    if (state.event === 'handoff.requested' || state.event === 'reception.requested') {
      parts.push(
        `<line x1="${x(state.atMs)}" y1="${TOP - 6}" x2="${x(state.atMs)}" y2="${statesY + LANE_HEIGHT - 4}" stroke="#111827" stroke-dasharray="4 3"/>`,
        `<text x="${x(state.atMs) + 3}" y="${TOP - 8}" font-size="10">handoff → ${esc(state.state)}</text>`,
      );
    }
  });
  for (let ms = 0; ms <= endMs; ms += 5000) {
    parts.push(
      `<line x1="${x(ms)}" y1="${axisY}" x2="${x(ms)}" y2="${axisY + 5}" stroke="#6b7280"/>`,
      `<text x="${x(ms)}" y="${axisY + 18}" text-anchor="middle" fill="#6b7280" font-size="10">${ms / 1000}s</text>`,
    );
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
