/**
 * Telephony facts read off LiveKit participants. A call from Vobiz arrives as a participant of
 * kind SIP whose attributes carry the numbers and call ids (`sip.*`, set by LiveKit's SIP service).
 */
import { ParticipantKind } from '@livekit/rtc-node';
import type { SipClient } from 'livekit-server-sdk';
import type { CallerInfo } from '../../machines/callMachine.js';

/** The subset of a LiveKit participant this module reads. */
export interface ParticipantLike {
  kind?: ParticipantKind | undefined;
  name?: string | undefined;
  attributes?: Record<string, string> | undefined;
}

export const SIP_ATTRIBUTES = {
  phoneNumber: 'sip.phoneNumber',
  callId: 'sip.callID',
  /** Set by LiveKit's SIP service: `active`, then `hangup` when the phone hangs up. */
  callStatus: 'sip.callStatus',
} as const;

/** The SIP service marks the call hung up before the participant leaves the room. */
export function isSipHangUp(changed: Record<string, string>): boolean {
  return changed[SIP_ATTRIBUTES.callStatus] === 'hangup';
}

/** Caller info from a SIP participant; an empty object for web or test participants. */
export function callerFromParticipant(participant: ParticipantLike): CallerInfo {
  if (participant.kind !== ParticipantKind.SIP) return {};
  const attributes = participant.attributes ?? {};
  const caller: CallerInfo = {};
  const number = attributes[SIP_ATTRIBUTES.phoneNumber]?.trim();
  const callId = attributes[SIP_ATTRIBUTES.callId]?.trim();
  if (number) caller.number = number;
  if (callId) caller.callId = callId;
  if (participant.name && participant.name !== number) caller.name = participant.name;
  return caller;
}

/** SIP actions on a live call, as the bridge needs them. */
export interface CallTelephony {
  /** Cold-transfer the caller (SIP REFER) to a phone number; rejects if the transfer fails. */
  transferCaller(to: string): Promise<void>;
}

/** The subset of livekit-server-sdk's SipClient used on calls. */
export type SipCalls = Pick<SipClient, 'transferSipParticipant' | 'createSipParticipant'>;

export class LiveKitTelephony implements CallTelephony {
  constructor(
    private readonly sip: SipCalls,
    private readonly roomName: string,
    private readonly callerIdentity: string,
  ) {}

  async transferCaller(to: string): Promise<void> {
    await this.sip.transferSipParticipant(this.roomName, this.callerIdentity, toSipUri(to), {
      playDialtone: false,
    });
  }
}

/** `tel:` URI for a number, or the value itself when it already is a URI. */
export function toSipUri(to: string): string {
  return /^(tel|sip|sips):/.test(to) ? to : `tel:${to}`;
}

export type DialFailure = 'no-answer' | 'busy' | 'failed';

export interface DialRequest {
  trunkId: string;
  number: string;
  roomName: string;
  participantIdentity: string;
  ringingTimeoutInS: number;
}

/**
 * Dial out through the outbound trunk and wait until answered. Resolves with the failure reason
 * instead of throwing, so a call that never connects still ends with a reason.
 */
export async function dialOut(
  sip: SipCalls,
  request: DialRequest,
): Promise<{ ok: true } | { ok: false; reason: DialFailure; detail: string }> {
  try {
    await sip.createSipParticipant(request.trunkId, request.number, request.roomName, {
      participantIdentity: request.participantIdentity,
      waitUntilAnswered: true,
      ringingTimeout: request.ringingTimeoutInS,
      playDialtone: false,
    });
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: dialFailureReason(error), detail: (error as Error).message };
  }
}

/** What the bridge needs to end a call that never connected. */
export interface Abandonable {
  abandon(reason: string): void;
}

/**
 * Dial the callee; if they do not answer, end the call with the reason (no-answer, busy,
 * failed) so it shows in the call log, and resolve false. Never hangs: the ringing timeout bounds it.
 */
export async function dialOrAbandon(
  bridge: Abandonable,
  sip: SipCalls,
  request: DialRequest,
): Promise<boolean> {
  const outcome = await dialOut(sip, request);
  if (!outcome.ok) bridge.abandon(outcome.reason);
  return outcome.ok;
}

/** SIP 486/600/603 are busy or declined; 408/480/487 and timeouts are no answer. */
export function dialFailureReason(error: unknown): DialFailure {
  const sipStatus = Number(
    (error as { metadata?: Record<string, string> }).metadata?.sip_status_code ?? NaN,
  );
  if ([486, 600, 603].includes(sipStatus)) return 'busy';
  if ([408, 480, 487].includes(sipStatus)) return 'no-answer';
  if ((error as { code?: string }).code === 'deadline_exceeded') return 'no-answer';
  return 'failed';
}

/** Job metadata of an outbound call. */
export interface DialRequestMetadata {
  phoneNumber: string;
}

export function encodeDialRequest(request: DialRequestMetadata): string {
  return JSON.stringify({ dial: request });
}

/** The number to dial from job metadata, or null for an inbound call (or other metadata). */
export function decodeDialRequest(metadata: string | undefined): DialRequestMetadata | null {
  if (!metadata) return null;
  try {
    const parsed = JSON.parse(metadata) as { dial?: { phoneNumber?: unknown } };
    const phoneNumber = parsed.dial?.phoneNumber;
    return typeof phoneNumber === 'string' && phoneNumber !== '' ? { phoneNumber } : null;
  } catch {
    return null;
  }
}
