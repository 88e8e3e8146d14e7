/**
 * Keypad (DTMF) digits as machine events: the same events the model's tools send, so voice and
 * keypad share one code path, one set of guards and one set of refusals.
 */
import type { CallEvent, Department } from '../../machines/callMachine.js';
import { DEFAULT_FLOW, type Flow, departmentsOf } from '../../machines/flow.js';

export type KeypadTarget = Department | 'human';
export type KeypadMap = Readonly<Record<string, KeypadTarget>>;

/** Each department's key from the flow, and 0 for a person. */
export function keypadFor(flow: Flow): KeypadMap {
  return {
    ...Object.fromEntries(flow.departments.map((d) => [d.key, d.name])),
    '0': 'human',
  };
}

export const DEFAULT_KEYPAD: KeypadMap = keypadFor(DEFAULT_FLOW);

/** Parse "1=billing,2=support,3=sales,0=human"; throws with the bad entry named. */
export function parseKeypadMap(text: string, flow: Flow = DEFAULT_FLOW): KeypadMap {
  const departments = departmentsOf(flow);
  const map: Record<string, KeypadTarget> = {};
  for (const entry of text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [digit, target] = entry.split('=').map((part) => part.trim());
    if (
      !digit ||
      !/^[0-9*#]$/.test(digit) ||
      !target ||
      !(target === 'human' || departments.includes(target))
    ) {
      throw new Error(`"${entry}" is not DIGIT=${[...departments, 'human'].join('|')}`);
    }
    map[digit] = target;
  }
  return map;
}

/** The event a digit asks for, or null when the digit is not assigned. */
export function keypadEvent(
  digit: string,
  map: KeypadMap,
  recentCallerWords: string[],
): CallEvent | null {
  const target = map[digit];
  if (!target) return null;
  const earlier = recentCallerWords
    .filter(Boolean)
    .map((w) => `"${w}"`)
    .join(' ');
  if (target === 'human') {
    return { type: 'transfer.requested', reason: `caller pressed ${digit} for a person` };
  }
  return {
    type: 'handoff.requested',
    department: target,
    reason: `${target}, chosen on the keypad (${digit})`,
    summary: `The caller chose ${target} on the keypad.${earlier ? ` Earlier they said: ${earlier}` : ''}`,
  };
}
