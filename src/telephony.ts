/**
 * Telephony facts read off LiveKit participants. A call from Vobiz arrives as a participant of
 * kind SIP whose attributes carry the numbers and call ids (`sip.*`, set by LiveKit's SIP service).
 */
import { ParticipantKind } from '@livekit/rtc-node';
import type { CallerInfo } from '../machines/callMachine.js';

/** The subset of a LiveKit participant this module reads. */
export interface ParticipantLike {
  kind?: ParticipantKind | undefined;
  name?: string | undefined;
  attributes?: Record<string, string> | undefined;
}

export const SIP_ATTRIBUTES = {
  phoneNumber: 'sip.phoneNumber',
  callId: 'sip.callID',
} as const;

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
