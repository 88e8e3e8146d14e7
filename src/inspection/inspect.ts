/**
 * Inspection of a call's machine for a visual viewer (`npm run inspector`), wired into the
 * bridge through its `inspect` option.
 *
 * - `off`: nothing is created.
 * - `local`: messages go over a websocket to the viewer at ws://host:port, on this machine by
 *   default. Redacted here, before they leave the process (see redact.ts); INSPECT_PII keeps
 *   phone numbers and caller text.
 * - `stately`: the same websocket and the same viewer, whose /stately page hands the messages to
 *   Stately's hosted inspector (https://stately.ai/inspect) running in your browser. The call
 *   process itself sends nothing to the internet, and INSPECT_PII is ignored: third-party code
 *   never receives phone numbers or caller text. (@statelyai/inspect's browser inspector needs a
 *   window; its Sky inspector would send every event to a cloud relay, and in 0.7 ignores the
 *   sanitize options in Node.)
 *
 * With nothing listening the call is unaffected: messages wait in a bounded buffer, reconnects
 * never keep the process alive, and `dispose()` stops everything.
 */
import { randomUUID } from 'node:crypto';
import { type StatelyInspectionEvent, createInspector } from '@statelyai/inspect';
import type { InspectionEvent, MachineContext } from 'xstate';
import type { CallObserver } from '../call/bridge.js';
import { type InspectionMessage, redactEvent, redactMessage, redactValue } from './redact.js';
import { InspectionSocket } from './socket.js';

export type InspectMode = 'off' | 'local' | 'stately';

export interface CallInspectionOptions {
  mode: InspectMode;
  /** Where the viewer listens. */
  port: number;
  host: string;
  /** Send phone numbers and caller text (local mode only). */
  pii: boolean;
  /** Who is sending (console, worker): shown in the viewer's call list. */
  app?: string;
}

export interface CallInspection {
  /** Pass to the CallBridge's `inspect` option; absent when inspection is off. */
  inspect?: (event: InspectionEvent) => void;
  /** Sends the call's transcript to the viewer; absent when inspection is off (see observing). */
  transcript?: Pick<CallObserver, 'say' | 'caller'>;
  /** The page to open to watch the calls; absent when inspection is off. */
  viewerUrl?: string;
  /** Deliver what is queued (briefly, if connected) and stop. */
  dispose(): Promise<void>;
}

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Actor ids ("x:0") restart in every process; a per-process tag keeps calls apart. */
function tagIds(message: InspectionMessage, tag: string): InspectionMessage {
  const tagged = { ...message, sessionId: `${tag}.${message.sessionId}` };
  for (const key of ['rootId', 'parentId', 'sourceId'] as const) {
    const id = message[key];
    if (id !== undefined) tagged[key] = `${tag}.${id}`;
  }
  return tagged;
}

export function createCallInspection(options: CallInspectionOptions): CallInspection {
  if (options.mode === 'off') return { dispose: async () => {} };
  const redaction = { pii: options.mode === 'local' && options.pii };
  const tag = randomUUID().slice(0, 8);
  const base = `${hostForUrl(options.host)}:${options.port}`;
  const query = new URLSearchParams({ app: options.app ?? 'call', pid: String(process.pid) });
  const socket = new InspectionSocket({ url: `ws://${base}/?${query}` });

  const inspector = createInspector(socket, {
    sanitizeContext: (context) => redactValue(context, redaction) as MachineContext,
    sanitizeEvent: (event) => redactEvent(event, redaction),
    // The last word: a whitelist of fields, which also covers what the two hooks above cannot
    // reach (the machine definition, the rest of the snapshot) and tags the actor ids.
    serialize: (message) => {
      const redacted = redactMessage(message, redaction) ?? {
        type: message.type,
        sessionId: message.sessionId,
        createdAt: message.createdAt,
        id: null,
      };
      return tagIds(redacted, tag) as unknown as StatelyInspectionEvent;
    },
  });
  inspector.start();

  // The transcript joins the call's root actor, whose id the first inspection event carries.
  let callId: string | undefined;
  const sendLine = (speaker: string, text: string) => {
    if (callId === undefined) return;
    const line = redactMessage(
      {
        type: '@call.transcript',
        sessionId: callId,
        createdAt: String(Date.now()),
        id: null,
        line: { speaker, text },
      },
      redaction,
    );
    if (line) socket.send(line as unknown as StatelyInspectionEvent);
  };

  return {
    inspect: (event) => {
      callId ??= `${tag}.${event.rootId}`;
      try {
        inspector.inspect.next?.(event);
      } catch {
        // Inspection must never break a call.
      }
    },
    transcript: {
      say: (agent, text) => sendLine(agent, text),
      caller: (text) => sendLine('caller', text),
    },
    viewerUrl: `http://${base}/${options.mode === 'stately' ? 'stately' : ''}`,
    dispose: async () => {
      // createInspector converts each event on a 0 ms timer: let the ones queued so far run.
      await new Promise((resolve) => setTimeout(resolve, 0));
      await socket.close();
    },
  };
}

/** `observer`, also sending what is said to the viewer when the call is inspected. */
export function observing(observer: CallObserver, inspection: CallInspection): CallObserver {
  const transcript = inspection.transcript;
  if (!transcript) return observer;
  return {
    ...observer,
    say: (agent, text) => {
      observer.say?.(agent, text);
      transcript.say?.(agent, text);
    },
    caller: (text) => {
      observer.caller?.(text);
      transcript.caller?.(text);
    },
  };
}
