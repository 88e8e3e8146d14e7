/**
 * `npm run console` end to end through its `main(argv, env)`, in process (the same code without
 * a Node start and a tsx load per call): --script --json with the offline model and with the real
 * OpenAI plugin against a local OpenAI-compatible server; bad flags and files; a failing model.
 * What is about the process itself (stderr, stdin, signals) is in consoleCommand.test.ts.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { offlineBrain } from '../src/models/offlineBrain.js';
import {
  ROOT,
  SCRIPT,
  expectBillingThenSupport,
  parseLines,
  runConsoleInProcess,
} from './consoleProcess.js';
import { type OpenAICompatibleServer, startOpenAICompatibleServer } from './fakes/openaiServer.js';

describe('console --script --json', () => {
  it('runs in process: importing it starts nothing, main(argv, env) runs the call', async () => {
    const written: string[] = [];
    const write = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk: string | Uint8Array) => {
        written.push(String(chunk));
        return true;
      });
    try {
      const { main } = await import('../src/cli/console.js');
      expect(written).toEqual([]); // the import ran no call
      const code = await main(['--script', SCRIPT, '--json'], { LOG_LEVEL: 'error' });
      expect(code).toBe(0);
    } finally {
      write.mockRestore();
    }
    expectBillingThenSupport(parseLines(written.join('')));
  });

  describe('with the OpenAI plugin', () => {
    let server: OpenAICompatibleServer;
    beforeAll(async () => {
      server = await startOpenAICompatibleServer(offlineBrain);
    });
    afterAll(() => server.close());

    it('takes the same path against a local OpenAI-compatible server', async () => {
      const run = await runConsoleInProcess(['--script', SCRIPT, '--json', '--model', 'openai'], {
        OPENAI_BASE_URL: server.url,
      });
      expect(run.code).toBe(0);
      const events = parseLines(run.stdout);
      expect(events[0]).toMatchObject({
        type: 'start',
        model: expect.stringContaining(server.url),
      });
      expectBillingThenSupport(events);
      // One model call per agent turn and none wasted on handoffs: reception, billing's opening,
      // billing's transfer, support's opening, support's end_call.
      expect(server.requests).toHaveLength(5);
      expect(server.requests.every((r) => r.stream === true)).toBe(true);
    });
  });

  it('--handoff-mode dispatch starts each specialist from the payload alone, one dispatch per handoff', async () => {
    const run = await runConsoleInProcess([
      '--script',
      SCRIPT,
      '--json',
      '--handoff-mode',
      'dispatch',
    ]);
    expect(run.code).toBe(0);
    const events = parseLines(run.stdout);
    expectBillingThenSupport(events);
    const dispatches = events.filter((e) => e.type === 'dispatch');
    expect(dispatches.map((e) => e.agent)).toEqual(['billing', 'support']);
    for (const d of dispatches) expect(d.bytes).toBeGreaterThan(200);
    // Each dispatch comes after its transition and before the specialist is on the line.
    const at = (pred: (e: Record<string, unknown>) => boolean) => events.findIndex(pred);
    expect(at((e) => e.type === 'dispatch' && e.agent === 'billing')).toBeGreaterThan(
      at((e) => e.type === 'transition' && e.to === 'billing'),
    );
    expect(at((e) => e.type === 'dispatch' && e.agent === 'billing')).toBeLessThan(
      at((e) => e.type === 'agent' && e.agent === 'billing'),
    );
    // One bridge line per handoff, by the agent handing over.
    const bridgeLines = events.filter(
      (e) => e.type === 'say' && /get you to|connecting you to/.test(String(e.text)),
    );
    expect(bridgeLines.map((e) => [e.agent, e.text])).toEqual([
      ['reception', "One moment, I'm connecting you to our billing team."],
      ['billing', "One moment, I'm connecting you to our support team."],
    ]);
  });

  it('takes keypad presses as [digit] lines, through the same machine events and refusals', async () => {
    const run = await runConsoleInProcess([
      '--script',
      join(ROOT, 'examples', 'keypad.txt'),
      '--json',
    ]);
    expect(run.code).toBe(0);
    const events = parseLines(run.stdout);
    expect(events.filter((e) => e.type === 'keypad').map((e) => e.digit)).toEqual(['1', '1', '0']);
    expect(events).toContainEqual({
      type: 'transition',
      from: 'intent',
      to: 'billing',
      event: 'handoff.requested',
    });
    expect(events.filter((e) => e.type === 'refusal').map((e) => e.code)).toEqual([
      'same-department',
      'no-human',
    ]);
    const billing = events
      .filter((e) => e.type === 'say' && e.agent === 'billing')
      .map((e) => e.text);
    expect(billing).toContain(
      "I can't connect you to a person right now, but I can help with billing myself.",
    );
    expect(events.at(-1)).toEqual({ type: 'end', reason: 'caller said goodbye' });
  });

  it('hangs up after the last line when the script has no goodbye', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'console-'));
    const file = join(dir, 'sales.txt');
    await writeFile(file, 'I want to upgrade my plan\n');
    const run = await runConsoleInProcess(['--script', file, '--json']);
    expect(run.code).toBe(0);
    const events = parseLines(run.stdout);
    expect(events.filter((e) => e.type === 'agent').map((e) => e.agent)).toEqual([
      'reception',
      'sales',
    ]);
    expect(events.at(-1)).toEqual({ type: 'end', reason: 'caller-hung-up' });
  });

  it('prints readable text without --json, with who speaks and each state change', async () => {
    const run = await runConsoleInProcess(['--script', SCRIPT]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Model: offline keyword model (not an LLM).');
    expect(run.stdout).toMatch(/intent → billing/);
    expect(run.stdout).toMatch(/billing › Hi, this is the billing team/);
    expect(run.stdout).toMatch(/call ended: caller said goodbye/);
  });
});

describe('console in dispatch mode with a specialist that never speaks', () => {
  let server: OpenAICompatibleServer;
  beforeAll(async () => {
    // The first specialist leg's opening request is never answered; every other one is.
    let openings = 0;
    server = await startOpenAICompatibleServer((request) =>
      request.instructions.includes('Opening:') && ++openings === 1
        ? new Promise(() => {})
        : offlineBrain(request),
    );
  });
  afterAll(() => server.close());

  it('withdraws it after HANDOFF_JOIN_TIMEOUT_MS, apologises, goes on in process and ends', async () => {
    const run = await runConsoleInProcess(
      ['--script', SCRIPT, '--json', '--model', 'openai', '--handoff-mode', 'dispatch'],
      { OPENAI_BASE_URL: server.url, HANDOFF_JOIN_TIMEOUT_MS: '1000' },
    );
    expect(run.code).toBe(0);
    const events = parseLines(run.stdout);
    const reception = events.filter((e) => e.type === 'say' && e.agent === 'reception');
    expect(reception.at(-1)?.text).toMatch(/our billing team could not pick up on their line/);
    // The withdrawn leg never reached the caller: the call went on exactly as in process.
    expectBillingThenSupport(events);
    expect(events.filter((e) => e.type === 'dispatch').map((e) => e.agent)).toEqual([
      'billing',
      'support',
    ]);
    expect(events.filter((e) => e.type === 'end')).toHaveLength(1);
  });
});

describe('console errors', () => {
  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--model', 'gpt'], /--model must be "offline" or "openai"/],
    [['--handoff-mode', 'relay'], /--handoff-mode must be "in-process" or "dispatch"/],
    [['--model', 'openai'], /--model openai needs OPENAI_API_KEY or OPENAI_BASE_URL/],
    [['--caller', 'abc'], /--caller "abc" has no \+ and country code/],
    [
      ['--script', '/nonexistent/calls.txt'],
      /cannot read script \/nonexistent\/calls.txt: no such file/,
    ],
  ])('rejects %j with a clear message and exit code 2', async (args, message) => {
    const run = await runConsoleInProcess(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.split('\n')[0]).toMatch(message);
  });
});

describe('console with a failing model (real OpenAI plugin, fault-injecting server)', () => {
  let faulty: OpenAICompatibleServer;
  beforeAll(async () => {
    faulty = await startOpenAICompatibleServer(offlineBrain);
  });
  afterAll(() => faulty.close());
  const fastFaults = {
    HOLD_LINE_MS: '300',
    FIRST_TOKEN_TIMEOUT_MS: '800',
    CHUNK_GAP_TIMEOUT_MS: '500',
    RETRY_AFTER_CAP_MS: '200',
  };

  it.each(['in-process', 'dispatch'])(
    '%s: a model that goes down after the handoff gets apologies, then an end with model-unavailable and exit 1',
    async (mode) => {
      // Reception's request works; then every request fails (billing's opening and after).
      faulty.fault({ delayMs: 0 }, ...Array.from({ length: 30 }, () => ({ status: 503 })));
      const run = await runConsoleInProcess(
        ['--script', SCRIPT, '--json', '--model', 'openai', '--handoff-mode', mode],
        { OPENAI_BASE_URL: faulty.url, ...fastFaults },
      );
      faulty.clearFaults(); // leave nothing for the next test
      const events = parseLines(run.stdout);
      const billing = events.filter((e) => e.type === 'say' && e.agent === 'billing');
      // Each turn: the hold line while the retries back off, then the apology; the second
      // failed turn in a row ends the call with an apology in the goodbye.
      expect(billing.map((e) => e.text)).toEqual([
        'One moment, please.',
        "Sorry, I'm having some trouble on my side. Could you say that again?",
        'One moment, please.',
        expect.stringContaining('our system is having trouble right now'),
      ]);
      expect(events.filter((e) => e.type === 'end')).toEqual([
        { type: 'end', reason: 'model-unavailable' },
      ]);
      expect(events.at(-1)).toEqual({ type: 'end', reason: 'model-unavailable' });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`the model at ${new URL(faulty.url).host} did not answer`);
      expect(run.stderr).toContain('check OPENAI_API_KEY and OPENAI_BASE_URL');
    },
  );
});
