/**
 * `npm run console`: a text call in the terminal with the same machine, agents, tools and bridge
 * as a live call, on a room-less AgentSession. Offline by default.
 *
 *   npm run console                              type as the caller; Ctrl-D hangs up
 *   npm run console -- --script calls/billing.txt --json
 *   npm run console -- --model openai            OpenAI plugin (OPENAI_API_KEY or OPENAI_BASE_URL)
 */
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { llm } from '@livekit/agents';
import { type CallContext, END_REASON_MODEL_UNAVAILABLE } from '../../machines/callMachine.js';
import type { CallObserver } from '../call/bridge.js';
import { ConsoleCall, type HandoffMode } from '../call/consoleCall.js';
import { DEFAULT_FLOW, departmentsOf } from '../../machines/flow.js';
import { type Config, ConfigError, e164Problem, hasOpenAI, loadConfig } from '../config.js';
import { isEntryPoint } from './entry.js';
import { createCallInspection, observing } from '../inspection/inspect.js';
import { createLogger, installAgentsLogger, maskPhoneNumber } from '../logging.js';
import {
  OFFLINE_MODEL_LABEL,
  createOfflineLLM,
  createOpenAILLM,
  offlineRealtimeBrain,
} from '../models/index.js';
import { createOfflineBrain } from '../models/offlineBrain.js';
import type { WireObserver } from '../models/openaiWire.js';
import { requireSpeechEngines, runVoiceCall } from '../voice/voiceConsole.js';

const KEYS = DEFAULT_FLOW.departments.map((d) => `${d.key} ${d.name}`).join(', ');

const USAGE = `Usage: npm run console -- [--script FILE] [--json] [--model offline|openai]
                      [--caller NUMBER] [--inspect] [--handoff-mode in-process|dispatch]
                      [--voice [--record FILE.wav] [--timeline FILE.svg]]
  --script FILE   caller lines, one per line; the call ends after the last line. A line
                  like [1] is a keypad press (${KEYS}, 0 a person)
  --json          JSON Lines on stdout, one object per event
  --model NAME    offline (keyword rules, no network) or openai; default: openai when
                  OPENAI_API_KEY or OPENAI_BASE_URL is set, else offline
  --caller NUMBER the caller's phone number, as a SIP call would provide it
  --inspect       show the call live in the viewer (npm run inspector; INSPECT=stately for
                  Stately's), redacted unless INSPECT_PII=1
  --handoff-mode  in-process (default): agents switch inside one session; dispatch: each
                  handoff starts the next agent in a fresh session from the serialised payload
                  alone, as a separate worker would
  --voice         speak the call: caller lines are spoken (flite) into the production speech
                  pipeline against a local speech server (needs flite, pocketsphinx, sox)
  --record FILE   with --voice: write the call as a WAV, caller left, agents right
  --timeline FILE with --voice: draw the call as an SVG timeline`;

/** A bad flag or file: printed as one line with the usage, exit code 2. */
class UsageError extends Error {}

interface ConsoleOptions {
  script: string | undefined;
  json: boolean;
  model: 'offline' | 'openai';
  caller: string | undefined;
  inspect: boolean;
  handoffMode: HandoffMode;
  voice: boolean;
  record: string | undefined;
  timeline: string | undefined;
}

function parseOptions(argv: string[], openaiAvailable: boolean): ConsoleOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        script: { type: 'string' },
        json: { type: 'boolean', default: false },
        model: { type: 'string' },
        caller: { type: 'string' },
        inspect: { type: 'boolean', default: false },
        'handoff-mode': { type: 'string', default: 'in-process' },
        voice: { type: 'boolean', default: false },
        record: { type: 'string' },
        timeline: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const model = values.model ?? (openaiAvailable ? 'openai' : 'offline');
  if (model !== 'offline' && model !== 'openai') {
    throw new UsageError(`--model must be "offline" or "openai", not "${model}"`);
  }
  if (model === 'openai' && !openaiAvailable) {
    throw new UsageError(
      '--model openai needs OPENAI_API_KEY or OPENAI_BASE_URL (see .env.example)',
    );
  }
  const callerProblem = values.caller === undefined ? undefined : e164Problem(values.caller);
  if (callerProblem) throw new UsageError(`--caller ${callerProblem}`);
  const handoffMode = values['handoff-mode'];
  if (handoffMode !== 'in-process' && handoffMode !== 'dispatch') {
    throw new UsageError(`--handoff-mode must be "in-process" or "dispatch", not "${handoffMode}"`);
  }
  if ((values.record || values.timeline) && !values.voice) {
    throw new UsageError('--record and --timeline need --voice');
  }
  return {
    script: values.script,
    json: values.json,
    model,
    caller: values.caller,
    inspect: values.inspect,
    handoffMode,
    voice: values.voice,
    record: values.record,
    timeline: values.timeline,
  };
}

async function readScript(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `cannot read script ${path}: ${code === 'ENOENT' ? 'no such file' : code}`,
    );
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

type Emit = (event: Record<string, unknown>) => void;

function jsonObserver(emit: Emit): CallObserver {
  return {
    transition: ({ from, to, event }) => emit({ type: 'transition', from, to, event }),
    refusal: (refusal) => emit({ type: 'refusal', ...refusal }),
    agent: (agent) => emit({ type: 'agent', agent }),
    say: (agent, text) => emit({ type: 'say', agent, text }),
    caller: (text) => emit({ type: 'caller', text }),
    dispatch: (agent, bytes) => emit({ type: 'dispatch', agent, bytes }),
    keypad: (digit) => emit({ type: 'keypad', digit }),
    end: (reason) => emit({ type: 'end', reason }),
  };
}

function textObserver(write: (line: string) => void, echoCaller: boolean): CallObserver {
  return {
    transition: ({ from, to, event }) => write(`  · ${from} → ${to}  (${event})`),
    refusal: (r) => write(`  · refused ${r.request}${r.to ? ` to ${r.to}` : ''}: ${r.code}`),
    agent: (agent) => write(`  · ${agent} is on the line`),
    say: (agent, text) => write(`${agent.padStart(9)} › ${text}`),
    caller: (text) => {
      if (echoCaller) write(`${'caller'.padStart(9)} › ${text}`);
    },
    dispatch: (agent, bytes) => write(`  · handed to the ${agent} worker (${bytes}-byte payload)`),
    keypad: (digit) => write(`${'caller'.padStart(9)} › [pressed ${digit}]`),
    end: (reason) => write(`  · call ended: ${reason}`),
  };
}

async function runCall(options: ConsoleOptions, config: Config): Promise<number> {
  if (options.voice) await requireSpeechEngines();
  const logger = createLogger({
    // The SDK warns about harmless things at the end of a text call; LOG_LEVEL=warn shows them.
    level: config.logLevel ?? 'error',
    pii: config.logPii,
    destination: 'stderr',
    readable: true,
  });
  installAgentsLogger(logger);

  const out = (line: string) => process.stdout.write(`${line}\n`);
  const emit: Emit = (event) => out(JSON.stringify(event));
  const createModel = (wire: WireObserver): llm.LLM =>
    options.model === 'openai' ? createOpenAILLM(config, wire) : createOfflineLLM(config.flow);
  // MODEL_MODE=realtime in voice: one realtime model per agent; offline, the local speech server
  // speaks the Realtime protocol with the offline model deciding.
  const realtime = options.voice && config.models.mode === 'realtime';
  const modelLabel =
    options.model === 'openai'
      ? `OpenAI ${realtime ? config.models.realtime : config.models.llm}${config.openai.baseURL ? ` at ${config.openai.baseURL}` : ''}`
      : realtime
        ? `${OFFLINE_MODEL_LABEL} behind the local Realtime server`
        : OFFLINE_MODEL_LABEL;
  const lines = options.script ? await readScript(options.script) : undefined;

  if (options.json) emit({ type: 'start', model: modelLabel });
  else {
    out(`Model: ${modelLabel}.`);
    if (options.model === 'offline') {
      const names = departmentsOf(config.flow);
      const listed = `${names.slice(0, -1).join(', ')}${names.length > 1 ? ' and ' : ''}${names.at(-1)}`;
      out(`  It recognises ${listed} requests and goodbyes by keywords.`);
      out('  Set OPENAI_API_KEY or OPENAI_BASE_URL to talk to a real model.');
    }
    if (!lines) out('Type what the caller says. Ctrl-D hangs up.');
    if (options.caller)
      out(`Caller: ${config.logPii ? options.caller : maskPhoneNumber(options.caller)}`);
  }

  // --inspect: local unless INSPECT=stately. With no viewer running the call is unaffected.
  const inspection = createCallInspection({
    ...config.inspect,
    mode: !options.inspect ? 'off' : config.inspect.mode === 'stately' ? 'stately' : 'local',
    app: 'console',
  });
  if (inspection.viewerUrl && !options.json) out(`Inspect: ${inspection.viewerUrl}`);

  const observer = observing(
    options.json
      ? jsonObserver(emit)
      : textObserver(out, lines !== undefined || !process.stdin.isTTY),
    inspection,
  );
  if (options.voice) {
    await runVoiceCall({
      config,
      logger,
      createModel,
      ...(realtime && options.model === 'offline'
        ? { realtimeBrain: offlineRealtimeBrain(createOfflineBrain(config.flow)) }
        : {}),
      observer,
      ...(options.json ? { emit } : {}),
      out,
      lines,
      typed: () => createInterface({ input: process.stdin, terminal: process.stdin.isTTY }),
      ...(options.caller ? { caller: { number: options.caller } } : {}),
      handoffMode: options.handoffMode,
      ...(inspection.inspect ? { inspect: inspection.inspect } : {}),
      ...(options.record ? { record: options.record } : {}),
      ...(options.timeline ? { timeline: options.timeline } : {}),
    });
    await inspection.dispose();
    return 0;
  }

  // Text only: no STT, TTS or VAD, and no room.
  const call = new ConsoleCall({
    flow: config.flow,
    createModel,
    reply: config.reply,
    bridgeLine: config.handoff.bridgeLine,
    opening: config.handoff.opening,
    companyName: config.companyName,
    maxHandoffs: config.maxHandoffs,
    logger,
    observer,
    ...(inspection.inspect ? { inspect: inspection.inspect } : {}),
    handoffMode: options.handoffMode,
    keypad: config.telephony.keypad,
    joinTimeoutMs: config.handoff.joinTimeoutMs,
  });
  // Safety net: a call stalled with nothing left to run would let Node exit 0 with no `end`.
  // Hang up instead (the machine ends the call and reports it), and exit 1: it was a fault.
  let stalled = false;
  const onStall = () => {
    if (stalled) process.exit(1);
    stalled = true;
    logger.error('call stalled with nothing left to run; hanging up');
    call.hangUp();
  };
  process.on('beforeExit', onStall);

  // SIGINT (Ctrl-C) and SIGTERM end the call through the machine: reason `shutdown`, a goodbye,
  // the `end` event, then the exit.
  let stoppedBy: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals) => {
    stoppedBy ??= signal;
    void call.shutdown();
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);

  await call.start(options.caller ? { number: options.caller } : undefined);

  const say = async (line: string) => {
    try {
      await call.say(line);
    } catch (error) {
      logger.error({ err: error }, 'turn failed');
    }
  };

  // The conversation runs beside the call: whatever ends the call (goodbye, hang-up, shutdown,
  // the model giving up) ends this function, even with a reply still pending.
  void (async () => {
    if (lines) {
      for (const line of lines) {
        if (!call.active) return;
        await say(line);
      }
    } else {
      // In a terminal, readline echoes what the caller types (on stderr when stdout is piped).
      const terminal = process.stdin.isTTY === true;
      const input = createInterface({
        input: process.stdin,
        ...(terminal ? { output: process.stdout.isTTY ? process.stdout : process.stderr } : {}),
        terminal,
      });
      void call.done.then(() => input.close());
      // In a terminal, Ctrl-D is the caller hanging up: at once, even while a reply is pending.
      if (process.stdin.isTTY) input.once('close', () => call.hangUp());
      for await (const line of input) {
        if (line.trim() !== '') await say(line.trim());
        if (!call.active) return;
      }
    }
    // The script ran out (or piped input ended) without a goodbye: the caller hangs up.
    call.hangUp();
  })();

  const end = await call.done;
  process.off('SIGINT', stop).off('SIGTERM', stop);
  process.off('beforeExit', onStall);
  // Closing the models and the inspector must not hold the exit.
  await Promise.race([
    Promise.all([call.close(), inspection.dispose()]),
    new Promise((resolve) => setTimeout(resolve, 500).unref()),
  ]);
  if (stoppedBy) return 128 + (stoppedBy === 'SIGINT' ? 2 : 15);
  if (stalled) return 1;
  if (end.reason === END_REASON_MODEL_UNAVAILABLE) {
    const where = config.openai.baseURL ? new URL(config.openai.baseURL).host : 'api.openai.com';
    process.stderr.write(
      `console: the model at ${where} did not answer (${describeFailures(end.context)}); ` +
        'check OPENAI_API_KEY and OPENAI_BASE_URL, or run with --model offline.\n',
    );
    return 1;
  }
  return 0;
}

function describeFailures(context: CallContext): string {
  const kinds = [...new Set(context.reply.failures.map((f) => f.kind))];
  return kinds.length > 0 ? kinds.join(', ') : 'no reply';
}

/** The console: `argv` without node and the script; `env` instead of `.env` and the process's. */
export async function main(argv: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  try {
    const config = loadConfig(env);
    const options = parseOptions(argv, hasOpenAI(config));
    if (options === 'help') {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    return await runCall(options, config);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`console: ${error.message}\n${USAGE}\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`console: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`console: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    () => process.exit(1),
  );
}
