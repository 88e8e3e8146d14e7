/**
 * `npm run bench [-- --quick]`: the project against native LiveKit agents, measured in one run,
 * written to BENCHMARKS.md (between its benchmark markers; other sections are kept) and
 * docs/bench-handoff.svg.
 *
 * 1. Handoffs in audio (the voice console's line, speech server and caller voice; the real OpenAI
 *    plugin against ./modelServer.ts holding every completion L ms): from the end of the caller's
 *    line to the first audio of the bridge line, to the specialist's first audio, and the longest
 *    silence between; N calls per variant and L, medians with min-max, ratios to native.
 * 2. Orchestration per control event against a bare `actor.send`; memory per call at 1, 50 and
 *    200 calls against native sessions (./micro.ts, each in its own process).
 * 3. Launch to the first spoken line of the compiled console, against `node` importing
 *    @livekit/agents alone.
 *
 * A benchmark, not a test: the figures move with the machine's load (reported alongside).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { createLogger, installAgentsLogger } from '../src/logging.js';
import { offlineBrain } from '../src/models/offlineBrain.js';
import { missingSpeechEngines } from '../src/speech/engines.js';
import { startSpeechServer } from '../src/speech/server.js';
import { renderHandoffChart } from './chart.js';
import {
  CALLER_LINE,
  type HandoffTiming,
  VARIANTS,
  runHandoffCall,
  variantName,
} from './handoffCall.js';
import { startModelServer } from './modelServer.js';
import type { OrchestrationResult, Percentiles } from './micro.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BEGIN = '<!-- bench:begin (written by npm run bench; edit bench/run.ts instead) -->';
const END = '<!-- bench:end -->';

const quick = process.argv.includes('--quick');
const outFile = join(ROOT, 'BENCHMARKS.md');
const chartFile = join(ROOT, 'docs', 'bench-handoff.svg');

const settings = quick
  ? { latencies: [400], calls: 1, iterations: 100, memoryCalls: [1, 10], launches: 1 }
  : { latencies: [400, 1000], calls: 3, iterations: 1000, memoryCalls: [1, 50, 200], launches: 5 };

const logger = createLogger({ level: 'error', pii: false, destination: 'stderr' });
installAgentsLogger(logger);

// --- load average, sampled through the run --------------------------------------------------
const loads: number[] = [loadavg()[0]!];
const loadTimer = setInterval(() => loads.push(loadavg()[0]!), 2000);

function progress(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

// --- statistics ------------------------------------------------------------------------------
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function spread(values: number[], unit = (v: number) => `${Math.round(v)}`): string {
  if (values.length === 0) return '—';
  if (values.length === 1) return unit(values[0]!);
  return `${unit(median(values))} (${unit(Math.min(...values))}–${unit(Math.max(...values))})`;
}

/** "1.20 L sooner" or "0.40 L later". */
function soonerOrLater(gainMs: number, latencyMs: number): string {
  return `${(Math.abs(gainMs) / latencyMs).toFixed(2)} L ${gainMs >= 0 ? 'sooner' : 'later'}`;
}

const ratio = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : '—');

/** "(a) meets 2× at p50 (1.8×) but not at p99 (2.6×)" */
function meets(what: string, p: Percentiles, bare: Percentiles): string {
  const at = (q: 'p50' | 'p99') => `${q} (${ratio(p[q], bare[q])})`;
  const ok50 = p.p50 <= 2 * bare.p50;
  const ok99 = p.p99 <= 2 * bare.p99;
  if (ok50 && ok99) return `${what} meets it at ${at('p50')} and ${at('p99')}`;
  if (!ok50 && !ok99) return `${what} does not meet it at ${at('p50')} nor at ${at('p99')}`;
  return ok50
    ? `${what} meets it at ${at('p50')} but not at ${at('p99')}`
    : `${what} meets it at ${at('p99')} but not at ${at('p50')}`;
}

// --- 1. handoffs in audio --------------------------------------------------------------------
interface HandoffResults {
  latencyMs: number;
  byVariant: Map<string, HandoffTiming[]>;
  /** Calls that failed (timed out or never reached the specialist), per variant. */
  failures: Map<string, number>;
}

async function handoffs(): Promise<HandoffResults[]> {
  const speech = await startSpeechServer({ phrases: [CALLER_LINE], logger });
  const results: HandoffResults[] = [];
  try {
    for (const latencyMs of settings.latencies) {
      const model = await startModelServer(offlineBrain, latencyMs);
      const failures = new Map<string, number>();
      const byVariant = new Map<string, HandoffTiming[]>(VARIANTS.map((v) => [variantName(v), []]));
      try {
        // Variants take turns, so a busy minute on the machine falls on all of them.
        for (let round = 0; round < settings.calls; round++) {
          for (const variant of VARIANTS) {
            progress(
              `L=${latencyMs} ms, call ${round + 1}/${settings.calls}, ${variantName(variant)}`,
            );
            try {
              const timing = await runHandoffCall({ variant, model, speech, logger });
              byVariant.get(variantName(variant))!.push(timing);
            } catch (error) {
              // A call that breaks is reported, not hidden: the run goes on with the others.
              progress(`  failed: ${error instanceof Error ? error.message : String(error)}`);
              failures.set(variantName(variant), (failures.get(variantName(variant)) ?? 0) + 1);
            }
          }
        }
      } finally {
        await model.close();
      }
      results.push({ latencyMs, byVariant, failures });
    }
  } finally {
    await speech.close();
  }
  return results;
}

// --- 2 and 3. child processes ----------------------------------------------------------------
function run(
  command: string,
  args: string[],
  until?: (stdout: string) => boolean,
): Promise<{ stdout: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let done = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (!done && until?.(stdout)) {
        done = true;
        const ms = performance.now() - started;
        child.kill('SIGKILL');
        resolve({ stdout, ms });
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => {
      if (done) return;
      if (code === 0 && !until) resolve({ stdout, ms: performance.now() - started });
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-500)}`));
    });
  });
}

const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');

async function orchestration(): Promise<OrchestrationResult> {
  const { stdout } = await run('node', [
    '--import',
    TSX,
    'bench/micro.ts',
    'orchestration',
    String(settings.iterations),
  ]);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as never;
}

async function memory(variant: 'project' | 'native', calls: number): Promise<number> {
  const { stdout } = await run('node', [
    '--expose-gc',
    '--import',
    TSX,
    'bench/micro.ts',
    'memory',
    variant,
    String(calls),
  ]);
  return (JSON.parse(stdout.trim().split('\n').at(-1)!) as { bytesPerCall: number }).bytesPerCall;
}

async function launches(): Promise<{ project: number[]; native: number[]; tsx: number[] }> {
  progress('building (npm run build)');
  await run('npm', ['run', '-s', 'build']);
  const dir = await mkdtemp(join(tmpdir(), 'bench-'));
  const script = join(dir, 'call.txt');
  await writeFile(script, 'Thanks, bye!\n');
  const spoke = (stdout: string) => stdout.includes('"type":"say"');
  const out = { project: [] as number[], native: [] as number[], tsx: [] as number[] };
  try {
    for (let i = 0; i < settings.launches; i++) {
      progress(`launch ${i + 1}/${settings.launches}`);
      const args = ['--script', script, '--json', '--model', 'offline'];
      out.project.push((await run('node', ['dist/src/cli/console.js', ...args], spoke)).ms);
      out.tsx.push((await run('node', ['--import', TSX, 'src/cli/console.ts', ...args], spoke)).ms);
      out.native.push(
        (
          await run(
            'node',
            ['-e', "import('@livekit/agents').then(() => console.log('imported'))"],
            (s) => s.includes('imported'),
          )
        ).ms,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

// --- the report ------------------------------------------------------------------------------
function handoffSection(results: HandoffResults[]): string[] {
  const lines: string[] = [];
  const native = variantName({ kind: 'native', handoff: 'no-returns' });
  for (const { latencyMs, byVariant, failures } of results) {
    const base = median(byVariant.get(native)!.map((t) => t.specialistMs));
    lines.push(
      `### L = ${latencyMs} ms`,
      '',
      "| variant | calls | model requests | bridge line (first audio) | specialist (first audio) | longest silence | specialist vs native without returns | specialist after the caller's line reached the model |",
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const [name, timings] of byVariant) {
      const failed = failures.get(name) ?? 0;
      const calls = `${timings.length}${failed ? ` (${failed} failed)` : ''}`;
      if (timings.length === 0) {
        lines.push(`| ${name} | ${calls} | — | — | — | — | — | — |`);
        continue;
      }
      const specialist = timings.map((t) => t.specialistMs);
      const afterModel = timings.map((t) => t.specialistAfterModelMs);
      const bridges = timings.flatMap((t) => (t.bridgeMs === null ? [] : [t.bridgeMs]));
      lines.push(
        `| ${name} | ${calls} | ${spread(timings.map((t) => t.modelRequests))} | ${spread(bridges)} | ${spread(specialist)} | ${spread(timings.map((t) => t.longestSilenceMs))} | ${ratio(median(specialist), base)}, ${soonerOrLater(base - median(specialist), latencyMs)} | ${spread(afterModel)} = ${(median(afterModel) / latencyMs).toFixed(2)} L |`,
      );
    }
    lines.push('');
  }
  return lines;
}

async function main(): Promise<void> {
  const missing = await missingSpeechEngines();
  if (missing) {
    process.stderr.write(`npm run bench: ${missing}\n`);
    process.exit(2);
  }
  const started = Date.now();
  const handoffResults = await handoffs();
  progress('orchestration');
  const orch = await orchestration();
  const mem: { calls: number; project: number; native: number }[] = [];
  for (const calls of settings.memoryCalls) {
    progress(`memory, ${calls} calls`);
    mem.push({
      calls,
      project: await memory('project', calls),
      native: await memory('native', calls),
    });
  }
  const launch = await launches();
  clearInterval(loadTimer);
  loads.push(loadavg()[0]!);

  // The chart: per variant and L, the call whose specialist came in at the median.
  const rows = handoffResults.flatMap(({ latencyMs, byVariant }) =>
    [...byVariant].flatMap(([name, timings]) => {
      if (timings.length === 0) return [];
      const sorted = [...timings].sort((a, b) => a.specialistMs - b.specialistMs);
      const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
      return [
        {
          label: `${name}, L=${latencyMs}`,
          segments: mid.segments,
          specialistMs: mid.specialistMs,
        },
      ];
    }),
  );
  await writeFile(
    chartFile,
    renderHandoffChart(
      rows,
      "From the end of the caller's line to the specialist's voice (median call)",
    ),
  );

  const kb = (bytes: number) => `${Math.round(bytes / 1024)} KB`;
  const us = (v: number) => `${v.toFixed(1)} µs`;
  const s = (ms: number) => `${Math.round(ms)}`;
  const body = [
    BEGIN,
    '## Handoffs in audio, against native LiveKit (issue 15)',
    '',
    `Run ${new Date(started).toISOString()}${quick ? ' with `--quick` (one call per variant: a smoke run, not figures)' : ''}, ` +
      `${Math.round((Date.now() - started) / 1000)} s, on ${cpus().length} cores shared with other work: ` +
      `**load average (1 min) during the run ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}** ` +
      `(median ${median(loads).toFixed(1)}). The figures are noisy; compare the ratios within this run, not with another run.`,
    '',
    `Each call: the greeting plays, the caller says "${CALLER_LINE}" (flite, real time, down the voice console's phone line), ` +
      "and the call runs until the specialist's voice is heard. The same speech server (flite TTS in each agent's voice, " +
      'pocketsphinx STT on the realtime transcription websocket), Silero VAD with VAD turn detection, and the real OpenAI ' +
      `plugin against a local streaming server that holds every completion L ms before its first token. ${settings.calls} ` +
      "call(s) per variant and L, taking turns. Times in ms from the end of the caller's speech on the line's clock; " +
      'median (min–max). Who is speaking is told by the voice the speech server synthesised, not by the code under test.',
    '',
    "- **project**: this project in process (machine, agents, tools, bridge), default settings: the old agent's bridge line, then the specialist's first model reply.",
    "- **project (HANDOFF_OPENING=brief)**: no bridge line; the specialist says a sentence built from the decision's reason in its own voice the moment it is active, while its first model reply is requested (src/call/fastHandoff.ts).",
    "- **native llm.handoff without / with returns**: the agents of bench/nativeAgents.ts (as bench/nativeWorker.ts, written the way LiveKit documents handoffs) in an AgentSession on the same audio input and output. With `returns` the old agent makes one more model call and says its filler (asked for the project's bridge line).",
    '',
    ...handoffSection(handoffResults),
    '![Handoff timeline, project against native](docs/bench-handoff.svg)',
    '',
    '### The house',
    '',
    `Orchestration per control event: a handoff request through the bridge into a room-less session (machine, decision, the new agent with its tools, history and brief, \`updateAgent\`, the crash-recovery snapshot with the worker's room store), in calls of at most \`MAX_HANDOFFS\` (4) handoffs, ${settings.iterations} events after a warm-up; against a bare XState \`actor.send\` of the same event (in a loop of its own, which keeps the processor's caches warm, and in step with each request in the same call, taking turns going first), and against what LiveKit's documented handoff tool does per handoff (build the next agent with its tools, \`llm.handoff\`). Ratios are to the bare send in its own loop:`,
    '',
    '| | p50 | p99 | p50 vs bare send | p99 vs bare send |',
    '| --- | --- | --- | --- | --- |',
    ...(
      [
        ['(a) bridge.request: the whole event', orch.bridge],
        [
          "(b) the house's own work: (a) less the SDK's `session.updateAgent` inside it",
          orch.house,
        ],
        ['`session.updateAgent` inside (a) (the SDK; native handoffs make it too)', orch.sdkSwitch],
        ["native handoff tool's work", orch.native],
        [
          'bare actor.send of the same event, just before each (a), in the same call',
          orch.barePaired,
        ],
        ['bare actor.send, in a loop of its own', orch.bare],
      ] as const
    ).map(
      ([label, p]) =>
        `| ${label} | ${us(p.p50)} | ${us(p.p99)} | ${ratio(p.p50, orch.bare.p50)} | ${ratio(p.p99, orch.bare.p99)} |`,
    ),
    '',
    `Against the goal (≤ 2× a bare \`actor.send\` at p50 and p99, the bare send in a loop of its own): ${meets('(a) the whole event', orch.bridge, orch.bare)}; ${meets("(b) the house's own work", orch.house, orch.bare)}. (b) still counts the construction of the next agent (the SDK's \`Agent\` constructor included) as the house's.`,
    '',
    "Heap per call (room-less text sessions, each process measuring one variant and count after a full GC; the project's bridge and machine against a native AgentSession with its reception agent):",
    '',
    '| calls | project | native | ratio |',
    '| --- | --- | --- | --- |',
    ...mem.map(
      (m) => `| ${m.calls} | ${kb(m.project)} | ${kb(m.native)} | ${ratio(m.project, m.native)} |`,
    ),
    '',
    `Launch to the first spoken line (the text console's greeting, \`--json\`, offline model), ${settings.launches} launches, ms:`,
    '',
    '| | median (min–max) | vs node importing @livekit/agents |',
    '| --- | --- | --- |',
    `| \`node dist/src/cli/console.js\` (compiled, npm run build) | ${spread(launch.project, s)} | ${ratio(median(launch.project), median(launch.native))} |`,
    `| the same under tsx | ${spread(launch.tsx, s)} | ${ratio(median(launch.tsx), median(launch.native))} |`,
    `| \`node -e "import('@livekit/agents')"\` | ${spread(launch.native, s)} | 1.00× |`,
    '',
    END,
  ].join('\n');

  let existing = '';
  try {
    existing = await readFile(outFile, 'utf8');
  } catch {
    existing = '# Benchmarks\n\n';
  }
  const from = existing.indexOf(BEGIN);
  const to = existing.indexOf(END);
  const updated =
    from >= 0 && to > from
      ? `${existing.slice(0, from)}${body}${existing.slice(to + END.length)}`
      : `${existing.trimEnd()}\n\n${body}\n`;
  // Written as Prettier writes it, so the lint of the committed file passes.
  const options = (await prettier.resolveConfig(outFile)) ?? {};
  await writeFile(outFile, await prettier.format(updated, { ...options, parser: 'markdown' }));
  progress(`wrote ${outFile} and ${chartFile}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    clearInterval(loadTimer);
    process.stderr.write(
      `npm run bench failed: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exit(1);
  },
);
