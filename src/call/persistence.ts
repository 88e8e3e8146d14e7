/**
 * Crash recovery: the latest snapshot of the machine and the call's words, kept outside this
 * process after every change of state and every line, so a new worker can resume the call.
 *
 * On a live call the store is the room's metadata (`RoomSnapshotStore`, src/livekit/
 * roomHandover.ts): it seals each payload (src/call/sealing.ts: every participant can read room
 * metadata) and coalesces writes, encoding only what it writes. Restoring is the worker's (`readRoomSnapshot`,
 * `restoreFromPayload` in handover.ts); the runtime starts from the restore point it is given.
 */
import type { Logger } from 'pino';
import type { CallActor } from '../../machines/decide.js';
import type { CallConversation } from './conversation.js';
import { encodePayload } from './handoffPayload.js';
import type { SnapshotStore } from './handover.js';

export class CallPersistence {
  constructor(
    private readonly store: SnapshotStore | undefined,
    private readonly conversation: CallConversation,
    private readonly log: Logger,
  ) {}

  /**
   * Saves the actor's snapshot with the conversation so far; `ended` once the call is over (the
   * store may clear it). Never throws: a call goes on without crash recovery. The payload is
   * encoded (and sealed) when the store writes it, not here (SnapshotStore.save): the latest
   * state then, and nothing once `movedOn` (the call lives in another leg).
   */
  save(actor: CallActor, movedOn: () => boolean = () => false): void {
    if (!this.store) return;
    try {
      this.store.save(
        () =>
          movedOn()
            ? null
            : encodePayload(actor.getPersistedSnapshot() as never, null, this.conversation.lines()),
        actor.getSnapshot().status === 'done',
      );
    } catch (error) {
      this.log.warn({ err: error }, 'snapshot not saved');
    }
  }
}
