/**
 * LiveKit SIP objects for Vobiz, created or brought up to date by name, so running the setup
 * twice creates nothing new:
 *   - an inbound trunk for the Vobiz number(s), accepting calls only from Vobiz's gateway;
 *   - a dispatch rule putting each inbound call in its own room and dispatching this worker;
 *   - an outbound trunk to the Vobiz SIP domain, with the Vobiz credentials.
 */
import {
  RoomAgentDispatch,
  RoomConfiguration,
  SIPDispatchRule,
  SIPDispatchRuleIndividual,
  SIPDispatchRuleInfo,
  SIPInboundTrunkInfo,
  SIPOutboundTrunkInfo,
  type CreateSipOutboundTrunkOptions,
  type SipClient,
} from 'livekit-server-sdk';
import type { Config } from '../config.js';
import { requireVariables } from '../config.js';

export interface TelephonyPlan {
  inbound: { name: string; numbers: string[]; allowedAddresses: string[] };
  outbound: {
    name: string;
    address: string;
    numbers: string[];
    authUsername: string;
    authPassword: string;
  };
  dispatch: { name: string; roomPrefix: string; agentName: string };
}

export type Action = 'created' | 'updated' | 'unchanged';

export interface ProvisionResult {
  inbound: { id: string; action: Action };
  outbound: { id: string; action: Action };
  dispatch: { id: string; action: Action };
}

export type SipProvisioning = Pick<
  SipClient,
  | 'listSipInboundTrunk'
  | 'listSipOutboundTrunk'
  | 'listSipDispatchRule'
  | 'createSipInboundTrunk'
  | 'createSipOutboundTrunk'
  | 'createSipDispatchRule'
  | 'updateSipInboundTrunk'
  | 'updateSipOutboundTrunk'
  | 'updateSipDispatchRule'
>;

/** Let LiveKit pick UDP or TCP as the Vobiz domain allows (protocol enum value 0). */
const SIP_TRANSPORT_AUTO = 0 as CreateSipOutboundTrunkOptions['transport'];

/** Room names of inbound calls start with this; the rule adds a unique suffix per call. */
export const INBOUND_ROOM_PREFIX = 'call-';

export function planFromConfig(config: Config): TelephonyPlan {
  const t = config.telephony;
  requireVariables(
    [
      ['VOBIZ_SIP_DOMAIN', t.sipDomain],
      ['VOBIZ_USERNAME', t.username],
      ['VOBIZ_PASSWORD', t.password],
      ['VOBIZ_OUTBOUND_NUMBER', t.outboundNumber],
    ],
    'set them in .env (see .env.example).',
  );
  const base = config.agentName;
  return {
    inbound: {
      name: `${base}-inbound`,
      numbers: t.inboundNumbers,
      allowedAddresses: t.allowedAddresses,
    },
    outbound: {
      name: `${base}-outbound`,
      address: t.sipDomain!,
      numbers: [t.outboundNumber!],
      authUsername: t.username!,
      authPassword: t.password!,
    },
    dispatch: { name: `${base}-dispatch`, roomPrefix: INBOUND_ROOM_PREFIX, agentName: base },
  };
}

const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);

export interface ProvisionOptions {
  /** Push the outbound credentials even when nothing visible changed (they cannot be read back). */
  force?: boolean;
}

export async function provision(
  sip: SipProvisioning,
  plan: TelephonyPlan,
  options: ProvisionOptions = {},
): Promise<ProvisionResult> {
  const inbound = await provisionInbound(sip, plan);
  const outbound = await provisionOutbound(sip, plan, options.force ?? false);
  const dispatch = await provisionDispatch(sip, plan, inbound.id);
  return { inbound, outbound, dispatch };
}

async function provisionInbound(sip: SipProvisioning, plan: TelephonyPlan) {
  const { name, numbers, allowedAddresses } = plan.inbound;
  const existing = (await sip.listSipInboundTrunk()).find((t) => t.name === name);
  if (!existing) {
    const created = await sip.createSipInboundTrunk(name, numbers, { allowedAddresses });
    return { id: created.sipTrunkId, action: 'created' as const };
  }
  if (
    sameList(existing.numbers, numbers) &&
    sameList(existing.allowedAddresses, allowedAddresses)
  ) {
    return { id: existing.sipTrunkId, action: 'unchanged' as const };
  }
  await sip.updateSipInboundTrunk(
    existing.sipTrunkId,
    new SIPInboundTrunkInfo({ ...existing, numbers, allowedAddresses }),
  );
  return { id: existing.sipTrunkId, action: 'updated' as const };
}

async function provisionOutbound(sip: SipProvisioning, plan: TelephonyPlan, force: boolean) {
  const { name, address, numbers, authUsername, authPassword } = plan.outbound;
  const existing = (await sip.listSipOutboundTrunk()).find((t) => t.name === name);
  if (!existing) {
    const created = await sip.createSipOutboundTrunk(name, address, numbers, {
      transport: SIP_TRANSPORT_AUTO,
      authUsername,
      authPassword,
    });
    return { id: created.sipTrunkId, action: 'created' as const };
  }
  const visibleSame =
    existing.address === address &&
    sameList(existing.numbers, numbers) &&
    existing.authUsername === authUsername;
  if (visibleSame && !force) return { id: existing.sipTrunkId, action: 'unchanged' as const };
  await sip.updateSipOutboundTrunk(
    existing.sipTrunkId,
    new SIPOutboundTrunkInfo({ ...existing, address, numbers, authUsername, authPassword }),
  );
  return { id: existing.sipTrunkId, action: 'updated' as const };
}

async function provisionDispatch(sip: SipProvisioning, plan: TelephonyPlan, inboundId: string) {
  const { name, roomPrefix, agentName } = plan.dispatch;
  const rule = new SIPDispatchRule({
    rule: { case: 'dispatchRuleIndividual', value: new SIPDispatchRuleIndividual({ roomPrefix }) },
  });
  const roomConfig = new RoomConfiguration({ agents: [new RoomAgentDispatch({ agentName })] });
  const existing = (await sip.listSipDispatchRule()).find((r) => r.name === name);
  if (!existing) {
    const created = await sip.createSipDispatchRule(
      { type: 'individual', roomPrefix },
      { name, trunkIds: [inboundId], roomConfig },
    );
    return { id: created.sipDispatchRuleId, action: 'created' as const };
  }
  const current = existing.rule?.rule;
  const same =
    current?.case === 'dispatchRuleIndividual' &&
    current.value.roomPrefix === roomPrefix &&
    sameList(existing.trunkIds, [inboundId]) &&
    existing.roomConfig?.agents.length === 1 &&
    existing.roomConfig.agents[0]?.agentName === agentName;
  if (same) return { id: existing.sipDispatchRuleId, action: 'unchanged' as const };
  await sip.updateSipDispatchRule(
    existing.sipDispatchRuleId,
    new SIPDispatchRuleInfo({ ...existing, rule, trunkIds: [inboundId], roomConfig }),
  );
  return { id: existing.sipDispatchRuleId, action: 'updated' as const };
}

/** The requests a first run sends, as `METHOD body` lines, with the password masked. */
export function describeRequests(plan: TelephonyPlan): string[] {
  const masked = { ...plan.outbound, authPassword: '********' };
  const post = (method: string, body: unknown) =>
    `POST /twirp/livekit.SIP/${method} ${JSON.stringify(body)}`;
  return [
    post('ListSIPInboundTrunk', {}),
    post('CreateSIPInboundTrunk', {
      trunk: new SIPInboundTrunkInfo({
        name: plan.inbound.name,
        numbers: plan.inbound.numbers,
        allowedAddresses: plan.inbound.allowedAddresses,
      }).toJson(),
    }),
    post('ListSIPOutboundTrunk', {}),
    post('CreateSIPOutboundTrunk', { trunk: new SIPOutboundTrunkInfo(masked).toJson() }),
    post('ListSIPDispatchRule', {}),
    post('CreateSIPDispatchRule', {
      rule: { dispatchRuleIndividual: { roomPrefix: plan.dispatch.roomPrefix } },
      trunkIds: ['<inbound trunk id>'],
      name: plan.dispatch.name,
      roomConfig: { agents: [{ agentName: plan.dispatch.agentName }] },
    }),
  ];
}
