/**
 * One live call, in its job process: connect, wait for the caller, run the machine-driven
 * session until the call ends, then shut the job down.
 */
import { businessTools } from '../business/index.js';
import { type JobContext, type JobProcess, type VAD, voice } from '@livekit/agents';
import * as silero from '@livekit/agents-plugin-silero';
import { RoomEvent } from '@livekit/rtc-node';
import { AgentDispatchClient, RoomServiceClient, SipClient } from 'livekit-server-sdk';
import { agentsOf } from '../../machines/flow.js';
import { type RestorePoint, restoreFromPayload } from '../call/handover.js';
import {
  LiveKitHandover,
  type RoomLike,
  RoomSnapshotStore,
  READY_ATTRIBUTE,
  readRoomSnapshot,
  waitForCaller,
} from './roomHandover.js';
import type { Logger } from 'pino';
import { CallBridge, type CallObserver } from '../call/bridge.js';
import { type Config, loadConfig, requireVariables } from '../config.js';
import { createCallInspection, observing } from '../inspection/inspect.js';
import { onShutdownRequest } from './jobShutdown.js';
import { reportJobToWorker } from './jobWatch.js';
import { createLogger } from '../logging.js';
import {
  callSessionOptions,
  createOpenAILLM,
  createOpenAISTT,
  createRealtimeVoices,
  createVoices,
  REALTIME_SESSION_OPTIONS,
} from '../models/index.js';
import { WireObserver } from '../models/openaiWire.js';
import { type SnapshotSealer, deriveSnapshotKey, snapshotSealer } from '../call/sealing.js';
import {
  LiveKitTelephony,
  callerFromParticipant,
  decodeDialRequest,
  dialOrAbandon,
  isSipHangUp,
} from './telephony.js';

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
    // The bridge logs 'call ended' itself; this line is the observer's `end`, once per call.
    end: (reason) => logger.info({ reason }, 'call end observed'),
  };
}

function createSession(config: Config, proc: JobProcess) {
  const wire = new WireObserver();
  if (config.models.mode === 'realtime') {
    // The realtime model speaks for itself; fixed lines are generated, not synthesised. Each
    // agent has its own model in its own voice; turns are detected by the model's server.
    const llmFor = createRealtimeVoices(config);
    return {
      session: new voice.AgentSession({
        llm: llmFor('reception'),
        ...REALTIME_SESSION_OPTIONS,
        ...callSessionOptions(config),
      }),
      ttsFor: undefined,
      llmFor,
      wire,
    };
  }
  const ttsFor = createVoices(config);
  const session = new voice.AgentSession({
    stt: createOpenAISTT(config, proc.userData.vad as VAD),
    llm: createOpenAILLM(config, wire),
    tts: ttsFor('reception'),
    vad: proc.userData.vad as VAD,
    ...callSessionOptions(config),
  });
  return { session, ttsFor, llmFor: undefined, wire };
}

/**
 * Where this job's call starts from: a handoff payload in the dispatch metadata (dispatch mode),
 * or a snapshot left in the room by a worker that stopped (crash recovery); null for a new call.
 * A restarted job still carries its original dispatch metadata, so the room's snapshot wins when
 * it is further along (more handoffs, or more conversation).
 */
function restorationFor(ctx: JobContext, config: Config, logger: Logger): RestorePoint | null {
  const input = {
    maxHandoffs: config.maxHandoffs,
    humanTransfers: agentsOf(config.flow).filter(
      (a) => config.telephony.humanNumbers[a] !== undefined,
    ),
  };
  const fromDispatch = restoreFromPayload(ctx.job.metadata ?? '', false, input, config.flow);
  const sealed = readRoomSnapshot(ctx.room.metadata, roomSealer(config), () =>
    logger.warn('the room holds a call snapshot this worker cannot open; ignoring it'),
  );
  const fromRoom = restoreFromPayload(sealed ?? '', true, input, config.flow);
  const restoration =
    fromRoom && (!fromDispatch || progress(fromRoom.restore) > progress(fromDispatch.restore))
      ? fromRoom
      : fromDispatch;
  if (!restoration) return null;
  if (!restoration.ok) {
    logger.warn({ reason: restoration.reason }, 'snapshot not restorable; continuing from intent');
  } else {
    logger.info({ resumed: restoration.restore.resumed }, 'call restored from snapshot');
  }
  return restoration.restore;
}

/** How far a call has gone: handoffs first, then lines of conversation. */
function progress(restore: RestorePoint): number {
  const snapshot = restore.snapshot as { context?: { handoffs?: unknown[] } };
  return (snapshot.context?.handoffs?.length ?? 0) * 10_000 + restore.history.length;
}

/** Seals the room's snapshot with SNAPSHOT_KEY, else a key derived from LIVEKIT_API_SECRET. */
function roomSealer(config: Config): SnapshotSealer {
  return snapshotSealer(deriveSnapshotKey(config.snapshotSecret ?? config.livekit.apiSecret!));
}

/** How long a job waits for its caller before giving up on the room. */
const CALLER_WAIT_MS = 60_000;

export async function runCallJob(ctx: JobContext): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({
    level: config.logLevel ?? 'info',
    pii: config.logPii,
    destination: 'stdout',
    // The job names the room before ctx.connect() does (ctx.room.name is empty until then).
  }).child({ room: ctx.job.room?.name ?? ctx.room.name });

  await ctx.connect();
  const roomName = ctx.room.name ?? ctx.job.room?.name ?? '';
  // Until the call is over, this process dying makes the worker dispatch the room again.
  const watched = reportJobToWorker({
    room: roomName,
    agentName: ctx.job.agentName,
    metadata: ctx.job.metadata ?? '',
  });
  ctx.addShutdownCallback(async () => watched.over());
  const dial = decodeDialRequest(ctx.job.metadata);
  const calleeIdentity = dial ? `callee-${dial.phoneNumber.replace(/\D/g, '')}` : undefined;
  // Checked even for outbound calls: a restarted outbound job must resume, not dial again.
  const restoration = restorationFor(ctx, config, logger);
  // main.ts checked these before the worker started.
  const [url, apiKey, apiSecret] = [
    config.livekit.url!,
    config.livekit.apiKey!,
    config.livekit.apiSecret!,
  ];
  const sip = new SipClient(url, apiKey, apiSecret);
  const { session, ttsFor, llmFor, wire } = createSession(config, ctx.proc);
  const snapshotStore = new RoomSnapshotStore(
    new RoomServiceClient(url, apiKey, apiSecret),
    roomName,
    roomSealer(config),
    (error) => logger.warn({ err: error }, 'could not save the call snapshot to the room'),
    2_000,
    ctx.room.metadata,
  );
  // INSPECT=local|stately (`npm run dev` sets local): this call, live in `npm run inspector`.
  const inspection = createCallInspection({ ...config.inspect, app: 'worker' });
  ctx.addShutdownCallback(() => inspection.dispose());
  // The caller's identity is known at once for outbound calls; inbound ones learn it below.
  let callerIdentity = calleeIdentity ?? '';
  const bridge = new CallBridge({
    session,
    flow: config.flow,
    extraTools: businessTools,
    companyName: config.companyName,
    maxHandoffs: config.maxHandoffs,
    logger,
    observer: observing(logObserver(logger), inspection),
    reply: config.reply,
    wire,
    bridgeLine: config.handoff.bridgeLine,
    opening: config.handoff.opening,
    speechOutageMs: config.speech.outageMs,
    speech: config.models.mode === 'realtime' ? 'generate' : 'say',
    ...(ttsFor ? { ttsFor } : {}),
    ...(llmFor ? { llmFor } : {}),
    ...(inspection.inspect ? { inspect: inspection.inspect } : {}),
    telephony: {
      transferCaller: (to) =>
        new LiveKitTelephony(sip, roomName, callerIdentity).transferCaller(to),
    },
    humanNumbers: config.telephony.humanNumbers,
    keypad: config.telephony.keypad,
    ...(restoration ? { restore: restoration } : {}),
    // Crash recovery: the latest snapshot lives in the room, not in this process.
    snapshotStore,
    ...(config.handoff.mode === 'dispatch'
      ? {
          handover: new LiveKitHandover(
            new AgentDispatchClient(url, apiKey, apiSecret),
            ctx.room as unknown as RoomLike,
            roomName,
            config.agentName,
            config.handoff.joinTimeoutMs,
          ),
        }
      : {}),
  });
  // Ended, or handed over to another department's worker: this job leaves the room.
  void bridge.done.then(({ reason }) => {
    watched.over();
    ctx.shutdown(reason);
  });

  if (dial && !restoration) {
    requireVariables(
      [['OUTBOUND_TRUNK_ID', config.telephony.outboundTrunkId]],
      'set it in .env (printed by npm run setup:telephony).',
    );
    const answered = await dialOrAbandon(bridge, sip, {
      trunkId: config.telephony.outboundTrunkId!,
      number: dial.phoneNumber,
      roomName,
      participantIdentity: calleeIdentity!,
      ringingTimeoutInS: config.telephony.ringingTimeoutInS,
    });
    if (!answered) return; // ended with no-answer, busy or failed; the job shuts down
  }
  // Not "the first participant": in dispatch mode the previous worker's agent is still here.
  const participant = await waitForCaller(ctx.room, CALLER_WAIT_MS).catch((error: unknown) => {
    logger.warn({ err: error }, 'no caller');
    return null;
  });
  if (!participant) return bridge.abandon('no caller');
  callerIdentity = participant.identity;
  const caller = callerFromParticipant(participant);
  logger.info({ caller }, 'caller joined');

  // The caller leaving is the machine's caller.hungUp; the session closing follows from it.
  ctx.room.on(RoomEvent.ParticipantDisconnected, (left) => {
    if (left.identity === participant.identity) bridge.callerHungUp();
  });
  // A phone call's SIP participant says `sip.callStatus: hangup` first: end the call at once.
  ctx.room.on(RoomEvent.ParticipantAttributesChanged, (changed, who) => {
    if (who.identity === participant.identity && isSipHangUp(changed)) bridge.callerHungUp();
  });
  // A job shut down from outside (worker draining on SIGTERM, room deleted) ends the call
  // through the machine: reason `shutdown`, with a goodbye if the caller is still there.
  // The worker's stop request is heard while the session still runs (see jobShutdown.ts); the
  // callback covers the rest (room deleted).
  const stopListening = onShutdownRequest(() => void bridge.shutdown());
  void bridge.done.then(stopListening);
  ctx.addShutdownCallback(async () => {
    await bridge.shutdown();
    await snapshotStore.flushed(); // the room must not keep a live snapshot of an ended call
  });

  try {
    await bridge.start({
      room: ctx.room,
      caller,
      inputOptions: { participantIdentity: participant.identity },
    });
  } catch (error) {
    logger.error({ err: error }, 'session failed to start');
    bridge.abandon('session failed to start');
    return;
  }
  // Dispatch mode: "ready" means this specialist has spoken; the previous worker waits for it
  // until the payload's deadline and then carries on in process, so a still silent one leaves.
  if (restoration?.joinBy !== undefined && !(await bridge.firstWordsBy(restoration.joinBy))) {
    logger.warn('specialist did not speak before the join deadline; withdrawing');
    await bridge.withdraw();
    return;
  }
  await ctx.room.localParticipant?.setAttributes({ [READY_ATTRIBUTE]: '1' });

  // Keypad digits from the caller go through the same machine events as the model's tools.
  // Listened to only now: a key pressed before the session runs has nobody to act on it.
  ctx.room.on(RoomEvent.DtmfReceived, (_code, digit, from) => {
    if (from?.identity === participant.identity) bridge.keypad(digit);
  });

  // Return only when the call has ended: on a stop request the SDK waits for this function
  // before it closes the session, which leaves time for the goodbye.
  await bridge.done;
}
