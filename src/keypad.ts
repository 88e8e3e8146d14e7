/**
 * Keypad (DTMF) digits as machine events: the same events the model's tools send, so voice and
 * keypad share one code path, one set of guards and one set of refusals.
 */
import { type CallEvent, type Department, isDepartment } from '../machines/callMachine.js';

export type KeypadTarget = Department | 'human';
export type KeypadMap = Readonly<Record<string, KeypadTarget>>;

export const DEFAULT_KEYPAD: KeypadMap = {
  '1': 'billing',
  '2': 'support',
  '3': 'sales',
  '0': 'human',
};

/** Parse "1=billing,2=support,3=sales,0=human"; throws with the bad entry named. */
export function parseKeypadMap(text: string): KeypadMap {
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
      !(target === 'human' || isDepartment(target))
    ) {
      throw new Error(`"${entry}" is not DIGIT=billing|support|sales|human`);
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
