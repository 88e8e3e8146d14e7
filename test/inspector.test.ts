/**
 * The inspector end to end, in a real browser: the viewer server in-process, calls from the
 * console as child processes with --inspect, and the page in a headless Chromium (Debian's, or
 * the one inside the @sparticuz/chromium package) driven by playwright-core. The test paces the caller's lines on what the page shows, so every state is
 * seen in turn without sleeps. Also: with no viewer listening, --inspect changes nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type LaunchOptions, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InspectorServer, startInspectorServer } from '../src/inspection/server.js';
import { runConsoleInProcess } from './consoleProcess.js';
import { freePort } from './support.js';

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'examples', 'billing-then-support.txt');
const CHROMIUM = '/usr/bin/chromium';
const CALLER = '+919876543210';
const MASKED = '+91********10';

interface Console {
  child: ChildProcess;
  /** Resolves with the exit code and stdout once the process exits. */
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function startConsole(args: string[], env: Record<string, string>): Console {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'src', 'cli', 'console.ts'), ...args],
    {
      cwd: ROOT,
      // Isolate from a developer's .env: empty values count as unset.
      env: { ...process.env, OPENAI_API_KEY: '', OPENAI_BASE_URL: '', LOG_LEVEL: 'error', ...env },
      timeout: 30_000,
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => ({
    code: code as number | null,
    stdout,
    stderr,
  }));
  return { child, exited };
}

/** No traffic to the outside: these machines refuse it, and a test must not depend on it. */
const QUIET = [
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Debian's chromium when installed; otherwise the static Chromium that ships inside the
 * `@sparticuz/chromium` npm package, so a bare `npm install && npm test` runs this test too.
 */
async function browserToLaunch(): Promise<LaunchOptions> {
  if (existsSync(CHROMIUM)) {
    return {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', ...QUIET],
    };
  }
  const { default: packaged } = await import('@sparticuz/chromium');
  return {
    executablePath: await packaged.executablePath(),
    args: [...packaged.args, ...QUIET],
    headless: true,
  };
}

async function scriptLines(): Promise<string[]> {
  return (await readFile(SCRIPT, 'utf8')).split('\n').filter((l) => l.trim() && !l.startsWith('#'));
}

describe('inspector viewer in a browser', () => {
  let server: InspectorServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: Error[] = [];

  beforeAll(async () => {
    server = await startInspectorServer({ port: 0, host: '127.0.0.1', pii: false });
    browser = await chromium.launch(await browserToLaunch());
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error));
    await page.goto(server.url);
    await page.locator('[data-testid="connection"][data-connected="true"]').waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const activeNode = (state: string) =>
    page.locator(`[data-testid="diagram"] g[data-state="${state}"][data-active="true"]`);

  async function expectActive(state: string) {
    await activeNode(state).waitFor();
    await page.locator('[data-testid="active-state"]', { hasText: state }).waitFor();
    expect(await page.locator('[data-testid="diagram"] [data-active="true"]').count()).toBe(1);
  }

  it('shows a console call live: its diagram, each state in turn, handoffs, masked caller', async () => {
    const [billingLine, supportLine, byeLine] = await scriptLines();
    const call = startConsole(['--inspect', '--json', '--caller', CALLER], {
      INSPECT_PORT: String(server.port),
    });

    await page.locator('li[data-call-id][data-status="live"]').waitFor();
    await expectActive('reception.intent');
    await expect(
      page.locator('[data-testid="diagram"] g[data-state="reception"]').getAttribute('data-active'),
    ).resolves.toBe('ancestor');

    // Readable at a glance: state labels in a normal window are at least 12 px high, and the
    // arrows carry no labels (their events are listed beside the diagram, one row per arrow).
    const labelPx = await page
      .locator('[data-testid="diagram"] g[data-state="billing"]')
      .evaluate((g) => {
        const label = g.querySelector('.nodeLabel, foreignObject span, text') ?? g;
        return label.getBoundingClientRect().height;
      });
    expect(labelPx).toBeGreaterThanOrEqual(12);
    const rows = page.locator('[data-testid="transitions"] li');
    const pairs = await rows.evaluateAll((items) =>
      items.map((i) => `${i.getAttribute('data-from')}>${i.getAttribute('data-to')}`),
    );
    expect(new Set(pairs).size).toBe(pairs.length);
    await expect(
      page
        .locator('[data-testid="transitions"] li[data-from="reception"][data-to="billing"]')
        .textContent(),
    ).resolves.toContain('handoff.requested');

    // The transcript beside the event log, live: the greeting is there before the caller speaks.
    const transcript = page.locator('[data-testid="transcript"]');
    await transcript.locator('li[data-speaker="reception"]').first().waitFor();
    call.child.stdin!.write(`${billingLine}\n`);
    await expectActive('billing');
    await transcript.locator('li[data-speaker="caller"]').first().waitFor();
    await transcript.locator('li[data-speaker="billing"]').first().waitFor();
    // The move just made is highlighted: its row, and the state it came from.
    await page
      .locator('[data-testid="transitions"] li[data-last="true"][data-to="billing"]')
      .waitFor();
    await page
      .locator('[data-testid="diagram"] g[data-state="reception.intent"][data-previous="true"]')
      .waitFor();
    call.child.stdin!.write(`${supportLine}\n`);
    await expectActive('support');
    call.child.stdin!.write(`${byeLine}\n`);
    await expectActive('ended');

    const run = await call.exited;
    expect(run.code).toBe(0);
    // The call stays listed after its process has gone.
    await page.locator('li[data-call-id][data-status="ended"][data-connected="false"]').waitFor();

    const log = page.locator('[data-testid="event-log"]');
    const handoffs = log.locator('li[data-kind="handoff"]');
    await expect(handoffs.allTextContents()).resolves.toEqual([
      expect.stringMatching(/reception → billing.*reason: a billing question: "I was charged/),
      expect.stringMatching(/billing → support.*reason: a technical problem: "the app keeps/),
    ]);
    // Summaries repeat what the caller said: hidden by default.
    await expect(handoffs.locator('[data-field="summary"]').allTextContents()).resolves.toEqual([
      'summary: [redacted]',
      'summary: [redacted]',
    ]);
    await expect(log.locator('li[data-kind="end"]').textContent()).resolves.toMatch(
      /call ended.*reason: caller said goodbye/,
    );

    // Every line in order, each redacted by default (the context's rule): nobody's words shown.
    const speakers = await transcript
      .locator('li')
      .evaluateAll((items) => items.map((i) => i.getAttribute('data-speaker')));
    expect(speakers.filter((s) => s === 'caller')).toHaveLength(3);
    expect(speakers.filter((s, i) => s !== speakers[i - 1])).toEqual(
      expect.arrayContaining(['reception', 'caller', 'billing', 'support']),
    );
    expect(speakers.indexOf('billing')).toBeLessThan(speakers.indexOf('support'));
    await expect(transcript.locator('[data-field="text"]').allTextContents()).resolves.toEqual(
      speakers.map(() => '[redacted]'),
    );

    const html = await page.content();
    expect(html).toContain(MASKED);
    expect(html).not.toContain('9876543210');
    expect(html).not.toContain('charged twice for my subscription this month".'); // summary
    expect(html).not.toContain(byeLine); // the caller's words
    expect(pageErrors).toEqual([]);
    // Saved for every run; UPDATE_SCREENSHOT=1 refreshes the README's copy in docs/.
    const shot = process.env.UPDATE_SCREENSHOT
      ? join(ROOT, 'docs', 'inspector.png')
      : join(tmpdir(), 'inspector.png');
    await page.screenshot({ path: shot });
    expect((await stat(shot)).size).toBeGreaterThan(10_000);
  });

  it('lists calls from several processes at once', async () => {
    const before = await page.locator('li[data-call-id]').count();
    const runs = await Promise.all(
      [1, 2].map(
        () =>
          startConsole(['--inspect', '--script', SCRIPT, '--json'], {
            INSPECT_PORT: String(server.port),
          }).exited,
      ),
    );
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    await page
      .locator('li[data-call-id][data-status="ended"]')
      .nth(before + 1)
      .waitFor();
    const ids = await page
      .locator('li[data-call-id]')
      .evaluateAll((items) => items.map((item) => item.getAttribute('data-call-id')));
    expect(new Set(ids).size).toBe(before + 2);
  });
});

describe('console --inspect with no viewer listening', () => {
  it('runs the call as usual and exits promptly with code 0', async () => {
    const port = await freePort();
    // The same call without --inspect, in process: the output to compare with.
    const plain = await runConsoleInProcess(['--script', SCRIPT, '--json']);
    const inspected = await startConsole(['--inspect', '--script', SCRIPT, '--json'], {
      INSPECT_PORT: String(port),
    }).exited;
    // A retry loop that kept the process alive would hit the 30 s spawn timeout (code null).
    expect(inspected.code).toBe(0);
    expect(inspected.stderr).toBe('');
    expect(inspected.stdout).toBe(plain.stdout);
  });
});
