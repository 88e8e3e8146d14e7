/**
 * The shape a handoff payload must have before its snapshot is given to `createActor`: checked
 * on decode, so a truncated, hand-edited or foreign payload is refused with the path that is
 * wrong, never restored into a broken call. Extra fields XState keeps in a persisted snapshot
 * pass through; the call's own context is checked field by field.
 */
import { z } from 'zod';
import { REPLY_FAILURE_KINDS, SPEECH_FAILURE_REASONS } from '../../machines/callMachine.js';

/** A well-formed agent name; decodePayload checks it belongs to the worker's flow. */
const agent = z.string().regex(/^[a-z][a-z0-9]*$/);
const text = z.string();
const nullableText = z.string().nullable();

export const CallerSchema = z
  .object({ number: text.optional(), name: text.optional(), callId: text.optional() })
  .strict();

export const HandoffSchema = z
  .object({ from: agent, to: agent, reason: text, summary: text, at: z.number() })
  .strict();

const RefusalSchema = z
  .object({
    code: z.enum(['one-per-turn', 'same-department', 'handoff-cap', 'no-human']),
    request: z.enum(['handoff', 'return', 'end', 'transfer']),
    from: agent,
    to: agent.optional(),
    turnId: text.optional(),
    at: z.number(),
  })
  .strict();

const ReplySchema = z
  .object({
    policy: z
      .object({
        maxRetries: z.number().int().min(0),
        maxFailedTurns: z.number().int().min(1),
        retryAfterCapMs: z.number().min(0),
        backoffMs: z.number().min(0),
      })
      .strict(),
    failedTurns: z.number().int().min(0),
    heldReplyId: nullableText,
    failures: z.array(
      z
        .object({
          agent,
          kind: z.enum(REPLY_FAILURE_KINDS),
          attempt: z.number().int().min(0),
          replyId: text,
          decision: z.enum(['retry', 'apologise', 'transfer', 'end']),
          at: z.number(),
        })
        .strict(),
    ),
  })
  .strict();

const SpeechSchema = z
  .object({
    hearingLost: z.boolean(),
    failures: z.array(
      z
        .object({
          agent,
          kind: z.enum(['stt', 'tts']),
          reason: z.enum(SPEECH_FAILURE_REASONS),
          remaining: z.number().int().min(0),
          at: z.number(),
        })
        .strict(),
    ),
  })
  .strict();

export const CallContextSchema = z
  .object({
    started: z.boolean(),
    caller: CallerSchema.nullable(),
    maxHandoffs: z.number().int().min(0),
    handoffs: z.array(HandoffSchema),
    refusals: z.array(RefusalSchema),
    endReason: nullableText,
    controlTurnId: nullableText,
    lastTurnId: nullableText,
    humanTransfers: z.array(agent),
    transfer: z
      .object({
        from: agent,
        reason: text,
        cause: z.enum(['requested', 'model-unavailable', 'speech-unavailable']),
        referring: z.boolean().optional(),
        callerLeft: z.boolean().optional(),
        error: text.optional(),
      })
      .strict()
      .nullable(),
    reply: ReplySchema,
    speech: SpeechSchema,
    greeting: z.enum(['spoken', 'interrupted']).nullable(),
    handoffMode: z.enum(['in-process', 'dispatch']),
    handover: z.object({ to: agent }).strict().nullable(),
  })
  .strict();

export const PayloadSchema = z.object({
  kind: z.literal('call-handoff'),
  payloadVersion: z.number().int(),
  machineVersion: z.number().int(),
  snapshot: z
    .object({
      status: z.literal('active'),
      value: z.union([z.string(), z.record(z.string())]),
      context: CallContextSchema,
    })
    .passthrough(),
  handoff: HandoffSchema.nullable(),
  history: z.array(z.object({ role: z.enum(['user', 'assistant']), text }).strict()),
  joinBy: z.number().optional(),
});

/** The first problem, as `path: message`. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  return `${issue.path.join('.') || '(payload)'}: ${issue.message}`;
}
