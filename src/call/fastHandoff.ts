/**
 * The specialist's first words after a handoff (HANDOFF_OPENING).
 *
 * - `model` (default): the old agent says the bridge line; the specialist's first model reply,
 *   requested the moment it is active, is its first words. The caller hears the specialist two
 *   model turns after they stop: the decision, then the opening.
 * - `brief`: no bridge line; the moment the specialist is active it says one sentence in its own
 *   voice built from the decision's own arguments (its team and the model's reason), and its
 *   first model reply is requested at the same time, to follow that sentence. The caller hears
 *   the specialist one model turn after they stop; its first sentence is a template around the
 *   reason the deciding model wrote, and what follows is the specialist model's, grounded in the
 *   conversation and the brief like any reply.
 *
 * Measured in audio against native LiveKit handoffs by `npm run bench` (BENCHMARKS.md).
 */
import type { tts } from '@livekit/agents';
import type { AudioFrame } from '@livekit/rtc-node';
import type { AgentName, HandoffRecord } from '../../machines/callMachine.js';
import { openingInstructions } from './lines.js';

export type HandoffOpening = 'model' | 'brief';

/** The old agent's bridge line is left out: the specialist's own voice is the bridge. */
export function skipsBridgeLine(opening: HandoffOpening | undefined): boolean {
  return opening === 'brief';
}

/** The first words of a `brief` opening: known before any call, so synthesised ahead. */
export function introLine(name: AgentName): string {
  return `Hi, this is ${name === 'reception' ? 'reception' : `the ${name} team`}.`;
}

/** The specialist's first sentences, from the handoff decision alone (no model request). */
export function briefOpeningLine(name: AgentName, handoff: HandoffRecord): string {
  const reason = handoff.reason.trim().replace(/[.!?]+$/, '');
  return reason ? `${introLine(name)} You're calling about ${reason}.` : introLine(name);
}

/** Each voice's intro audio, synthesised once per voice and kept while the voice lives. */
const intros = new WeakMap<tts.TTS, Map<string, AudioFrame[] | 'pending'>>();

/**
 * Synthesise each agent's intro line in its voice now, so a `brief` opening starts playing the
 * moment the specialist is active instead of after a synthesis. Failures are forgotten: that
 * opening is synthesised when spoken, as any line.
 */
export function prewarmIntros(
  agents: readonly AgentName[],
  voiceOf: (agent: AgentName) => tts.TTS | undefined,
): void {
  for (const agent of agents) {
    const voice = voiceOf(agent);
    if (!voice) continue;
    const byText = intros.get(voice) ?? new Map<string, AudioFrame[] | 'pending'>();
    intros.set(voice, byText);
    const text = introLine(agent);
    if (byText.has(text)) continue;
    byText.set(text, 'pending');
    void (async () => {
      const frames: AudioFrame[] = [];
      for await (const audio of voice.synthesize(text)) frames.push(audio.frame);
      byText.set(text, frames);
    })().catch(() => byText.delete(text));
  }
}

/** The intro's audio, then the rest of the line synthesised from now on, as one stream. */
function introThenRest(
  voice: tts.TTS,
  intro: AudioFrame[],
  rest: string,
): ReadableStream<AudioFrame> {
  const synthesis = rest ? voice.synthesize(rest) : null;
  return new ReadableStream<AudioFrame>({
    start(controller) {
      for (const frame of intro) controller.enqueue(frame);
      if (!synthesis) controller.close();
    },
    async pull(controller) {
      try {
        const next = await synthesis!.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value.frame);
      } catch {
        controller.close(); // the caller heard the intro; the model's reply follows
      }
    },
    cancel() {
      synthesis?.close();
    },
  });
}

/** Marks the request for what follows the opening sentence (the offline model reads it too). */
export const CONTINUATION_PREFIX = 'Continuing:';

/** What the specialist's first model reply is asked for, after the sentence already said. */
export function continuationInstructions(line: string): string {
  return [
    `${CONTINUATION_PREFIX} you have just taken over the call and said: "${line}"`,
    'Do not greet the caller or introduce yourself again. In one or two short sentences, continue',
    'from what the caller already said and the brief. Do not ask them to repeat it.',
  ].join(' \n');
}

/** The new agent's first words, as `opening` says; the session effects carry them out. */
export interface SpecialistOpening {
  /** `brief`: a sentence said at once in the specialist's voice (its audio, when prewarmed). */
  line?: { text: string; audio?: ReadableStream<AudioFrame> };
  /**
   * What the specialist's first model reply is asked for, requested at the same moment as the
   * line: the SDK runs a reply's inference as soon as it is scheduled and only holds back its
   * playout, so the model works while the sentence is synthesised and played.
   */
  instructions: string;
}

/** The new agent's first words, as `opening` says; asked for from its `onEnter`. */
export function specialistOpening(
  name: AgentName,
  handoff: HandoffRecord,
  opening: HandoffOpening,
  voice?: tts.TTS,
): SpecialistOpening {
  if (opening === 'model') return { instructions: openingInstructions(name, handoff) };
  const line = briefOpeningLine(name, handoff);
  const intro = voice ? intros.get(voice)?.get(introLine(name)) : undefined;
  const audio =
    voice && Array.isArray(intro)
      ? introThenRest(voice, intro, line.slice(introLine(name).length).trim())
      : undefined;
  return {
    line: audio ? { text: line, audio } : { text: line },
    instructions: continuationInstructions(line),
  };
}
