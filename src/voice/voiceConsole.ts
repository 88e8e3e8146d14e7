/**
 * `npm run console -- --voice`: the console's call, spoken. Starts the local speech server, then
 * speaks each caller line (from --script, or typed) down the phone line once the agents are
 * quiet. Adds `audio` and `speech` events to the console's output, and can write the call as a
 * two-channel WAV (--record: caller left, agents right) and an SVG timeline (--timeline).
 */
import { writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import type { CallerInfo } from '../../machines/callMachine.js';
import type { CallObserver } from '../call/bridge.js';
import { type Config, ConfigError } from '../config.js';
import type { HandoffMode } from '../call/consoleCall.js';
import { missingSpeechEngines } from '../speech/engines.js';
import { encodeWav } from '../speech/wav.js';
import { LINE_SAMPLE_RATE } from './line.js';
import { renderTimeline } from './timeline.js';
import { VoiceCall, type VoiceCallOptions, type VoiceEvent } from './voiceCall.js';

export interface VoiceConsoleOptions {
  config: Config;
  logger: Logger;
  createModel: VoiceCallOptions['createModel'];
  /** MODEL_MODE=realtime, offline: the brain behind the local Realtime server. */
  realtimeBrain?: VoiceCallOptions['realtimeBrain'];
  observer: CallObserver;
  /** JSON Lines mode: each audio and speech event as an object. */
  emit?: (event: Record<string, unknown>) => void;
  /** Text mode: a line per audio and speech event. */
  out: (line: string) => void;
  /** Caller lines; typed lines come from `typed` when absent. */
  lines: string[] | undefined;
  typed: () => AsyncIterable<string>;
  caller?: CallerInfo;
  handoffMode: HandoffMode;
  inspect?: (event: InspectionEvent) => void;
  record?: string;
  timeline?: string;
}

/** Fail before anything is printed when flite, pocketsphinx or sox is missing. */
export async function requireSpeechEngines(): Promise<void> {
  const missing = await missingSpeechEngines();
  if (missing) throw new ConfigError(`--voice: ${missing}`);
}

export async function runVoiceCall(options: VoiceConsoleOptions): Promise<void> {
  await requireSpeechEngines();

  const seconds = (ms: number) => (ms / 1000).toFixed(1);
  const onEvent = (event: VoiceEvent) => {
    if (event.type === 'audio') {
      const { agent, voice, startMs, endMs, interrupted } = event;
      if (options.emit) {
        options.emit({ type: 'audio', agent, startMs, endMs, voice, interrupted });
      } else {
        options.out(
          `  ♪ ${agent} (${voice ?? '?'}) ${seconds(startMs)}–${seconds(endMs)} s${interrupted ? ', interrupted' : ''}`,
        );
      }
    } else if (event.type === 'speech') {
      const { startMs, endMs, heard } = event;
      if (options.emit) options.emit({ type: 'speech', startMs, endMs, heard });
      else options.out(`  ♪ caller ${seconds(startMs)}–${seconds(endMs)} s, heard "${heard}"`);
    }
  };

  if (!options.emit) {
    options.out('Voice: caller lines are spoken by flite and heard through the production STT.');
    options.out("  Turns end on VAD silence: LiveKit's end-of-turn model runs only in a worker.");
  }
  const call = await VoiceCall.create({
    config: options.config,
    createModel: options.createModel,
    ...(options.realtimeBrain ? { realtimeBrain: options.realtimeBrain } : {}),
    logger: options.logger,
    observer: options.observer,
    onEvent,
    handoffMode: options.handoffMode,
    phrases: options.lines ?? [],
    keypad: options.config.telephony.keypad,
    ...(options.inspect ? { inspect: options.inspect } : {}),
  });
  // Ctrl-C or a SIGTERM is the caller hanging up: the machine ends the call, with its `end`.
  const hangUp = () => call.hangUp();
  process.once('SIGINT', hangUp).once('SIGTERM', hangUp);
  try {
    await call.start(options.caller);
    // The conversation runs beside the call: whatever ends the call ends the loop's wait.
    const conversation = (async () => {
      const lines = options.lines ?? options.typed();
      for await (const line of lines) {
        if (!call.active) break;
        try {
          await call.say(line);
        } catch (error) {
          options.logger.error({ err: error }, 'turn failed');
        }
      }
    })();
    await Promise.race([conversation, call.done]);
  } finally {
    process.off('SIGINT', hangUp).off('SIGTERM', hangUp);
    // The script ran out (or stdin closed) without a goodbye: the caller hangs up.
    await call.close();
  }

  if (options.record) {
    const { caller, agents } = call.line.recording();
    const stereo = new Int16Array(caller.length * 2);
    for (let i = 0; i < caller.length; i++) {
      stereo[2 * i] = caller[i]!;
      stereo[2 * i + 1] = agents[i] ?? 0;
    }
    await writeFile(
      options.record,
      encodeWav({ samples: stereo, sampleRate: LINE_SAMPLE_RATE, channels: 2 }),
    );
  }
  if (options.timeline) await writeFile(options.timeline, renderTimeline(call.events), 'utf8');
}
