/**
 * Dispatch-mode handoffs and crash recovery on a live LiveKit room:
 * - LiveKitHandover dispatches the department's worker into the same room with the payload as
 *   job metadata, and reports once that agent has joined (or the wait timed out);
 * - RoomSnapshotStore keeps the latest call snapshot in the room's metadata, so a worker that
 *   starts in a room that already has a call resumes it instead of greeting again.
 */
import type { SnapshotSealer } from '../call/sealing.js';
import type { EventEmitter } from 'node:events';
import { ParticipantKind, RoomEvent } from '@livekit/rtc-node';
import type { AgentDispatchClient, RoomServiceClient } from 'livekit-server-sdk';
import type { AgentName } from '../../machines/callMachine.js';
import type { HandoverTransport, SnapshotStore } from '../call/handover.js';

interface ParticipantLike {
  kind?: ParticipantKind | undefined;
  identity: string;
  attributes?: Record<string, string> | undefined;
}

/** The part of an rtc-node Room the handover watches. */
export interface RoomLike extends EventEmitter {
  remoteParticipants: Map<string, ParticipantLike>;
}

/**
 * Set by a worker on its agent participant once its session runs: "joined" means ready to talk,
 * not merely connected (a job that fails after connecting would leave the caller alone).
 */
export const READY_ATTRIBUTE = 'call.ready';

/** The worker that serves an agent: reception is the main worker, departments add a suffix. */
export function workerNameFor(baseAgentName: string, agent: AgentName): string {
  return agent === 'reception' ? baseAgentName : `${baseAgentName}-${agent}`;
}

export class LiveKitHandover implements HandoverTransport {
  constructor(
    private readonly dispatcher: Pick<AgentDispatchClient, 'createDispatch' | 'deleteDispatch'>,
    private readonly room: RoomLike,
    private readonly roomName: string,
    private readonly baseAgentName: string,
    readonly joinTimeoutMs: number,
  ) {}

  async handOver(
    payload: string,
    to: AgentName,
    signal?: AbortSignal,
  ): Promise<'joined' | 'timeout'> {
    const present = new Set(this.room.remoteParticipants.keys());
    // Listen before dispatching, so a fast join is not missed.
    const joined = waitForReadyAgent(this.room, present, this.joinTimeoutMs, signal);
    const dispatch = await this.dispatcher.createDispatch(
      this.roomName,
      workerNameFor(this.baseAgentName, to),
      { metadata: payload },
    );
    const outcome = await joined;
    if (outcome !== 'joined') {
      // Withdraw the dispatch so a late worker does not join a call that moved on or ended.
      await this.dispatcher.deleteDispatch(dispatch.id, this.roomName).catch(() => undefined);
      return 'timeout';
    }
    return outcome;
  }
}

function waitForReadyAgent(
  room: RoomLike,
  present: Set<string>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<'joined' | 'timeout' | 'aborted'> {
  return new Promise((resolve) => {
    const check = (participant: ParticipantLike) => {
      if (participant.kind !== ParticipantKind.AGENT || present.has(participant.identity)) return;
      if (participant.attributes?.[READY_ATTRIBUTE] === '1') finish('joined');
    };
    const onAttributes = (_changed: unknown, participant: ParticipantLike) => check(participant);
    const onAbort = () => finish('aborted');
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    function finish(outcome: 'joined' | 'timeout' | 'aborted') {
      clearTimeout(timer);
      room.off(RoomEvent.ParticipantConnected, check);
      room.off(RoomEvent.ParticipantAttributesChanged, onAttributes);
      signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    }
    if (signal?.aborted) return finish('aborted');
    signal?.addEventListener('abort', onAbort);
    room.on(RoomEvent.ParticipantConnected, check);
    room.on(RoomEvent.ParticipantAttributesChanged, onAttributes);
  });
}

/**
 * The caller: the first participant that is not an agent (SIP or web). In dispatch mode the
 * previous worker's agent is in the room too, so "the first participant" will not do.
 */
export function waitForCaller<P extends { kind?: ParticipantKind | undefined; identity: string }>(
  room: EventEmitter & { remoteParticipants: Map<string, P> },
  timeoutMs: number,
): Promise<P> {
  const isCaller = (p: P) => p.kind !== ParticipantKind.AGENT;
  const present = [...room.remoteParticipants.values()].find(isCaller);
  if (present) return Promise.resolve(present);
  return new Promise((resolve, reject) => {
    const onJoin = (participant: P) => {
      if (!isCaller(participant)) return;
      done();
      resolve(participant);
    };
    const onLeave = () => {
      done();
      reject(new Error('room closed before the caller joined'));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no caller joined within ${timeoutMs} ms`));
    }, timeoutMs);
    function done() {
      clearTimeout(timer);
      room.off(RoomEvent.ParticipantConnected, onJoin);
      room.off(RoomEvent.Disconnected, onLeave);
    }
    room.on(RoomEvent.ParticipantConnected, onJoin);
    room.on(RoomEvent.Disconnected, onLeave);
  });
}

function parseObject(text: string | undefined): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text ?? '');
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** Room metadata holding the call: `{ "call": <payload> }`, or `{ "call": null }` once ended. */
/**
 * The call's snapshot kept in the room, opened with `sealer`. A snapshot that is there but does
 * not open (another key, tampered with) is treated as absent; `onUnreadable` hears about it.
 */
export function readRoomSnapshot(
  metadata: string | undefined,
  sealer: SnapshotSealer,
  onUnreadable: () => void = () => {},
): string | null {
  if (!metadata) return null;
  let call: unknown;
  try {
    call = (JSON.parse(metadata) as { call?: unknown }).call;
  } catch {
    return null;
  }
  if (typeof call !== 'string') return null;
  const opened = sealer.open(call);
  if (opened === null) onUnreadable();
  return opened;
}

/**
 * Writes the latest snapshot to the room's metadata. Writes never overlap and never pile up:
 * while one is in flight, or within `minIntervalMs` of the last, only the newest waiting
 * snapshot is kept (LiveKit advises against metadata updates more often than every few seconds).
 */
export class RoomSnapshotStore implements SnapshotStore {
  #writing: Promise<void> | null = null;
  /** The newest save not written yet: encoded only when its turn to be written comes. */
  #next: { encode: () => string | null; ended: boolean } | null = null;
  /** Whatever else the room's metadata holds is kept: only the `call` key is ours. */
  readonly #others: Record<string, unknown>;

  constructor(
    private readonly rooms: Pick<RoomServiceClient, 'updateRoomMetadata'>,
    private readonly roomName: string,
    /** Room metadata is readable by every participant: the snapshot is sealed (sealing.ts). */
    private readonly sealer: SnapshotSealer,
    private readonly onError: (error: unknown) => void,
    private readonly minIntervalMs = 2_000,
    currentMetadata?: string,
  ) {
    this.#others = parseObject(currentMetadata);
  }

  save(encode: () => string | null, ended: boolean): void {
    this.#next = { encode, ended };
    if (!this.#writing) this.#writing = this.#drain();
  }

  /** Resolves when everything saved so far is written. */
  async flushed(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async #drain(): Promise<void> {
    while (this.#next !== null) {
      const { encode, ended } = this.#next;
      this.#next = null;
      try {
        const payload = ended ? null : encode();
        if (ended || payload !== null) {
          const call = payload === null ? null : this.sealer.seal(payload);
          await this.rooms.updateRoomMetadata(
            this.roomName,
            JSON.stringify({ ...this.#others, call }),
          );
        }
      } catch (error) {
        this.onError(error);
      }
      if (this.#next !== null && this.minIntervalMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, this.minIntervalMs));
      }
    }
    this.#writing = null;
  }
}
