/**
 * `npm run console` as a command, in a child process: what is about the process itself. The
 * documented command end to end (nothing on stderr, exit 0, the README's output), caller lines
 * piped on stdin, and SIGTERM / SIGINT mid-call. Everything else about the console runs its
 * `main(argv, env)` in process (console.test.ts).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ROOT,
  SCRIPT,
  expectBillingThenSupport,
  parseLines,
  runConsole,
} from './consoleProcess.js';

/** The documented command, run once: the first test and the README's. */
let documentedRun: ReturnType<typeof runConsole> | undefined;
const runDocumented = () => (documentedRun ??= runConsole(['--script', SCRIPT, '--json']));

describe('console --script --json', () => {
  it('takes the caller reception -> billing -> support -> end with the offline model', async () => {
    const run = await runDocumented();
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const events = parseLines(run.stdout); // throws if any stdout line is not JSON
    expect(events[0]).toEqual({ type: 'start', model: 'offline keyword model (not an LLM)' });
    expectBillingThenSupport(events);
  });
});

describe('console without --script', () => {
  it('reads caller lines from stdin and hangs up only after the last one', async () => {
    const run = await runConsole(['--json'], {}, 'I need help with my bill\n[0]\nthanks bye\n');
    expect(run.code).toBe(0);
    const events = parseLines(run.stdout);
    expect(events.filter((e) => e.type === 'caller').map((e) => e.text)).toEqual([
      'I need help with my bill',
      'thanks bye',
    ]);
    expect(events.filter((e) => e.type === 'keypad')).toHaveLength(1);
    expect(events.at(-1)).toEqual({ type: 'end', reason: 'caller said goodbye' });
  });
});

describe('console shutdown', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    '%s mid-call ends the call through the machine: a goodbye, one end, exit %i',
    async (signal, code) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src', 'cli', 'console.ts'), '--json'],
        {
          cwd: ROOT,
          env: { ...process.env, OPENAI_API_KEY: '', OPENAI_BASE_URL: '', LOG_LEVEL: 'error' },
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      const greeted = new Promise<void>((resolve) => {
        child.stdout.on('data', (data: Buffer) => {
          stdout += data.toString();
          if (stdout.includes('"greeting.spoken"')) resolve();
        });
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.stdin.write('I was charged twice\n'); // the call is under way; stdin stays open
      await greeted;
      const sent = performance.now();
      child.kill(signal);
      const exitCode = await exited;
      const tookMs = performance.now() - sent;
      const events = parseLines(stdout);
      expect(exitCode).toBe(code);
      expect(events.filter((e) => e.type === 'end')).toEqual([{ type: 'end', reason: 'shutdown' }]);
      expect(events.filter((e) => e.type === 'say').at(-1)?.text).toMatch(
        /we have to end this call now/,
      );
      expect(tookMs).toBeLessThan(2_000);
    },
  );
});

describe('the README', () => {
  it('shows the JSON Lines the documented console command prints today', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const shown = /```json\n(\{"type":"start"[\s\S]*?)```/.exec(readme)?.[1];
    expect(shown, 'the README has a JSON example').toBeDefined();
    const run = await runDocumented();
    expect(run.stdout).toBe(shown);
  });
});
