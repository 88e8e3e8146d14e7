/**
 * Model-based tests: every transition of the call machine, reached by a generated path and
 * executed against the real agent layer. `npm run test:paths` prints the coverage and fails
 * below 100%.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  activeStates,
  allTransitionKeys,
  generatePaths,
  machineStates,
  type ModelPath,
} from './pathModel.js';
import { PathRun } from './pathRunner.js';
import { trackUnhandledRejections } from './support.js';

const paths = generatePaths();
const coveredStates = new Set<string>();
const coveredTransitions = new Set<string>();
const rejections = trackUnhandledRejections();

function record(path: ModelPath): void {
  for (const step of path.steps) {
    for (const state of [...activeStates(step.before), ...activeStates(step.after)]) {
      coveredStates.add(state);
    }
    coveredTransitions.add(step.transition);
  }
}

function describePath(path: ModelPath): string {
  return path.steps
    .map(({ event }) => ('department' in event ? `${event.type}(${event.department})` : event.type))
    .join(' > ');
}

describe.concurrent('every transition of the call machine, against the real agent layer', () => {
  it.each(paths.map((path) => [path.target, path]))('%s', async (_, path) => {
    const run = new PathRun(path.input);
    try {
      await run.run(path.steps);
    } catch (error) {
      throw new Error(`path ${describePath(path)}\n${(error as Error).message}`, { cause: error });
    }
    record(path);
  });
});

afterAll(() => {
  rejections.stop();
  const states = machineStates();
  const transitions = allTransitionKeys();
  const statesCovered = states.filter((s) => coveredStates.has(s));
  const transitionsCovered = transitions.filter((t) => coveredTransitions.has(t));
  const line =
    `states covered ${statesCovered.length}/${states.length}, ` +
    `transitions covered ${transitionsCovered.length}/${transitions.length}`;
  process.stdout.write(`\n${line}\n`);
  const missing = [
    ...states.filter((s) => !coveredStates.has(s)),
    ...transitions.filter((t) => !coveredTransitions.has(t)),
  ];
  if (missing.length > 0) process.stdout.write(`not covered:\n  ${missing.join('\n  ')}\n`);
  expect(rejections.errors).toEqual([]);
  expect(missing, line).toEqual([]);
  // The README quotes these figures; they must not go stale.
  const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
  expect(readme, 'README: the coverage line').toContain(line);
  expect(readme, 'README: the number of paths').toContain(`(${paths.length} paths today)`);
});
