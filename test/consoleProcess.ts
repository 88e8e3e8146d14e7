/**
 * `npm run console` as the tests run it: as a child process, isolated from a developer's .env
 * (empty values count as unset), or in process through its `main(argv, env)` with stdout and
 * stderr captured, which spares a Node process and a tsx load per call.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import { type CommandRun, runMain } from './support.js';

export const ROOT = join(import.meta.dirname, '..');
/** The README's example call: billing, then support, then goodbye. */
export const SCRIPT = join(ROOT, 'examples', 'billing-then-support.txt');

export type ConsoleRun = CommandRun;

export function runConsole(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<ConsoleRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'cli', 'console.ts'), ...args],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          OPENAI_API_KEY: '',
          OPENAI_BASE_URL: '',
          LOG_LEVEL: 'error',
          ...env,
        },
        timeout: 120_000,
        maxBuffer: 10_000_000,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin ?? '');
  });
}

/**
 * The console's `main(argv, env)` in this process (see `runMain`); the environment is only `env`
 * (no .env, no OpenAI settings). Its logger writes to fd 2 directly, so `stderr` holds only the
 * console's own messages: a test of an empty stderr runs a child process (`runConsole`).
 */
export async function runConsoleInProcess(
  args: string[],
  env: Record<string, string> = {},
): Promise<ConsoleRun> {
  const { main } = await import('../src/cli/console.js');
  return runMain(main, args, { LOG_LEVEL: 'error', ...env });
}

/** The console's JSON Lines, each parsed (throws on a line that is not JSON). */
export function parseLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The README's example call, event by event: reception -> billing -> support -> goodbye. */
export function expectBillingThenSupport(events: Record<string, unknown>[]) {
  expect(events.filter((e) => e.type === 'transition')).toEqual([
    { type: 'transition', from: 'greeting', to: 'intent', event: 'greeting.spoken' },
    { type: 'transition', from: 'intent', to: 'billing', event: 'handoff.requested' },
    { type: 'transition', from: 'billing', to: 'support', event: 'handoff.requested' },
    { type: 'transition', from: 'support', to: 'ended', event: 'end.requested' },
  ]);
  expect(events.filter((e) => e.type === 'agent').map((e) => e.agent)).toEqual([
    'reception',
    'billing',
    'support',
  ]);
  expect(events.filter((e) => e.type === 'caller')).toHaveLength(3);
  const billingSays = events.filter((e) => e.type === 'say' && e.agent === 'billing');
  expect(billingSays[0]?.text).toMatch(/billing team.*charged twice for my subscription/);
  const supportSays = events.filter((e) => e.type === 'say' && e.agent === 'support');
  expect(supportSays[0]?.text).toMatch(/support team.*crashing/);
  expect(events.at(-1)).toEqual({ type: 'end', reason: 'caller said goodbye' });
}
