/**
 * The reply guard for a realtime model (MODEL_MODE=realtime). A realtime model answers the
 * caller on its own server: no `llmNode` request passes through replyGuard.ts, so this watches
 * the agent's realtime session instead and reports to the same machine, which decides as it does
 * for the pipeline (retry after a delay, an apology line, or moving on):
 *
 * - the caller's turn ended (the server's `speech_stopped`) and no response started within
 *   `firstTokenMs`: `reply.failed {kind: timeout}`;
 * - a response ended `failed` (the plugin reports it as a recoverable model error right after
 *   the response's metrics): `reply.failed {kind: http}`;
 * - a retry is a new response asked of the same session (`generateReply`), watched the same way;
 *   an apology is spoken as its own line; a response that completes after a failure in the turn
 *   reports `reply.recovered`.
 *
 * Not covered here: the hold line (a realtime response streams audio as soon as it starts) and
 * replies the bridge asks for itself (fixed lines, a specialist's opening).
 */
import type { llm, voice } from '@livekit/agents';
import type { AgentName, ReplyFailureKind } from '../../machines/callMachine.js';
import type { ReplyReporter } from './replyGuard.js';

export interface RealtimeReplyTarget {
  agent: AgentName;
  /** The agent's realtime model session. */
  session: llm.RealtimeSession;
  /** Ask the session for a new response to the conversation as it stands. */
  requestReply(): voice.SpeechHandle | undefined;
}

interface Turn {
  replyId: string;
  attempt: number;
  failed: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The retry this guard asked for, withdrawn if it fails too. */
  retry?: voice.SpeechHandle | undefined;
}

let turns = 0;

/** Watch `target`'s realtime replies until the returned function is called. */
export function watchRealtimeReplies(
  reporter: ReplyReporter,
  target: RealtimeReplyTarget,
): () => void {
  const { session, agent } = target;
  let turn: Turn | null = null;
  /** A response just ended: an error in the same tick is that response failing. */
  let responseEnding = false;

  const clear = () => {
    if (turn?.timer) clearTimeout(turn.timer);
    if (turn) turn.timer = undefined;
  };
  const awaitResponse = (current: Turn) => {
    clear();
    current.timer = setTimeout(() => {
      current.timer = undefined;
      if (turn === current) fail(current, 'timeout');
    }, reporter.deadlines.firstTokenMs);
  };
  const fail = (current: Turn, kind: ReplyFailureKind) => {
    if (reporter.endSignal.aborted) return;
    current.failed = true;
    // The SDK would wait its own 10 s for a response that never started, and hold every later
    // line behind it: the caller's next words are the machine's decision, now.
    if (current.retry && !current.retry.done()) current.retry.interrupt(true);
    current.retry = undefined;
    const { replyId, attempt } = current;
    const decision = reporter.failed({ replyId, agent, kind, attempt });
    reporter.log.warn(
      { agent, kind, attempt, decision: 'retryInMs' in decision ? 'retry' : 'line' },
      'realtime reply failed',
    );
    if ('retryInMs' in decision) {
      const retry = setTimeout(() => {
        if (turn !== current || reporter.endSignal.aborted) return;
        current.attempt++;
        awaitResponse(current);
        current.retry = target.requestReply();
      }, decision.retryInMs);
      reporter.endSignal.addEventListener('abort', () => clearTimeout(retry), { once: true });
      return;
    }
    turn = null;
    if (decision.say) reporter.speakNext(decision.say);
  };

  const onSpeechStarted = () => {
    // The caller speaks again: the next reply is due when they stop.
    clear();
    turn = null;
  };
  const onSpeechStopped = () => {
    turn = { replyId: `realtime-reply-${++turns}`, attempt: 0, failed: false, timer: undefined };
    awaitResponse(turn);
  };
  const onTranscribed = (ev: llm.InputTranscriptionCompleted) => {
    // Nothing recognisable (a cough, line noise): no reply is due.
    if (ev.isFinal && ev.transcript.trim() === '' && turn && !turn.failed) {
      clear();
      turn = null;
    }
  };
  const onGeneration = () => clear();
  const onMetrics = (ev: { type?: string; cancelled?: boolean }) => {
    if (ev.type !== 'realtime_model_metrics' || ev.cancelled) return;
    responseEnding = true;
    const current = turn;
    setImmediate(() => {
      if (!responseEnding) return;
      responseEnding = false;
      // Completed: the turn was answered.
      if (current && turn === current && current.timer === undefined) {
        turn = null;
        if (current.failed) reporter.recovered(agent);
      }
    });
  };
  const onError = (ev: llm.RealtimeModelError) => {
    if (!responseEnding || !ev.recoverable) return;
    responseEnding = false;
    if (turn) fail(turn, 'http');
  };

  session.on('input_speech_started', onSpeechStarted);
  session.on('input_speech_stopped', onSpeechStopped);
  session.on('input_audio_transcription_completed', onTranscribed);
  session.on('generation_created', onGeneration);
  session.on('metrics_collected', onMetrics);
  session.on('error', onError);
  return () => {
    clear();
    turn = null;
    session.off('input_speech_started', onSpeechStarted);
    session.off('input_speech_stopped', onSpeechStopped);
    session.off('input_audio_transcription_completed', onTranscribed);
    session.off('generation_created', onGeneration);
    session.off('metrics_collected', onMetrics);
    session.off('error', onError);
  };
}
