/**
 * One live call, in its job process: connect, wait for the caller, run the machine-driven
 * session until the call ends, then shut the job down.
 */
import { type JobContext, type JobProcess, type VAD, voice } from '@livekit/agents';
import * as silero from '@livekit/agents-plugin-silero';
import { RoomEvent } from '@livekit/rtc-node';
import type { Logger } from 'pino';
import { CallBridge, type CallObserver } from './bridge.js';
import { type Config, loadConfig } from './config.js';
import { createLogger } from './logging.js';
import {
  createOpenAILLM,
  createOpenAISTT,
  createRealtimeModel,
  createVoices,
} from './models/index.js';
import { callerFromParticipant } from './telephony.js';

/** Load Silero once per process, before any call arrives (it loads offline). */
export async function prewarm(proc: JobProcess): Promise<void> {
  const config = loadConfig();
  if (config.models.mode === 'pipeline') proc.userData.vad = await silero.VAD.load();
}

function logObserver(logger: Logger): CallObserver {
  return {
    transition: (change) => logger.info(change, 'call state changed'),
    refusal: (refusal) => logger.info({ refusal }, 'call request refused'),
    agent: (agent) => logger.info({ agent }, 'agent active'),
    say: (agent, text) => logger.debug({ agent, text }, 'agent said'),
    caller: (text) => logger.debug({ text }, 'caller said'),
    end: (reason) => logger.info({ reason }, 'call ended'),
  };
}

function createSession(config: Config, proc: JobProcess) {
  if (config.models.mode === 'realtime') {
    // The realtime model speaks for itself; fixed lines are generated, not synthesised.
    return {
      session: new voice.AgentSession({ llm: createRealtimeModel(config) }),
      ttsFor: undefined,
    };
  }
  const ttsFor = createVoices(config);
  const session = new voice.AgentSession({
    stt: createOpenAISTT(config),
    llm: createOpenAILLM(config),
    tts: ttsFor('reception'),
    vad: proc.userData.vad as VAD,
  });
  return { session, ttsFor };
}

export async function runCallJob(ctx: JobContext): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({
    level: config.logLevel ?? 'info',
    pii: config.logPii,
    destination: 'stdout',
  }).child({ room: ctx.room.name });

  await ctx.connect();
  const participant = await ctx.waitForParticipant();
  const caller = callerFromParticipant(participant);
  logger.info({ caller }, 'caller joined');

  const { session, ttsFor } = createSession(config, ctx.proc);
  const bridge = new CallBridge({
    session,
    companyName: config.companyName,
    maxHandoffs: config.maxHandoffs,
    logger,
    observer: logObserver(logger),
    speech: config.models.mode === 'realtime' ? 'generate' : 'say',
    ...(ttsFor ? { ttsFor } : {}),
  });

  // The caller leaving is the machine's caller.hungUp; the session closing follows from it.
  ctx.room.on(RoomEvent.ParticipantDisconnected, (left) => {
    if (left.identity === participant.identity) bridge.callerHungUp();
  });
  // A job shut down from outside (worker draining, room deleted) ends the call too.
  ctx.addShutdownCallback(async () => {
    bridge.callerHungUp();
    await bridge.done;
  });
  void bridge.done.then(() => ctx.shutdown('call ended'));

  await bridge.start({
    room: ctx.room,
    caller,
    inputOptions: { participantIdentity: participant.identity },
  });
}
