/**
 * What each agent may ask the machine for, derived from the machine itself: the control requests
 * its state accepts in a call that has just reached it. The agent's control tools are built from
 * this, so no agent is offered a request its state would refuse outright (billing is not offered
 * a handoff to billing). Refusals that depend on the call so far (the handoff cap, one change
 * per turn) stay the machine's to give at run time.
 */
import { getInitialSnapshot, getNextSnapshot } from 'xstate';
import {
  type AgentName,
  type CallEvent,
  type CallInput,
  type Department,
  callStateOf,
  machineFor,
} from './callMachine.js';
import { DEFAULT_FLOW, type Flow, agentsOf, departmentsOf } from './flow.js';

export type ControlRequest =
  | { kind: 'handoff'; department: Department }
  | { kind: 'return' }
  | { kind: 'transfer' }
  | { kind: 'end' };

function candidates(flow: Flow): ControlRequest[] {
  return [
    ...departmentsOf(flow).map((department) => ({ kind: 'handoff' as const, department })),
    { kind: 'return' },
    { kind: 'transfer' },
    { kind: 'end' },
  ];
}

function eventFor(request: ControlRequest): CallEvent {
  const common = { reason: 'offer check', summary: 'offer check', turnId: 'offer-check' };
  switch (request.kind) {
    case 'handoff':
      return { type: 'handoff.requested', department: request.department, ...common };
    case 'return':
      return { type: 'reception.requested', ...common };
    case 'transfer':
      return { type: 'transfer.requested', reason: common.reason, turnId: common.turnId };
    case 'end':
      return { type: 'end.requested', reason: common.reason, turnId: common.turnId };
  }
}

/** The state an agent talks in once the call has started (reception: listening). */
function stateValueOf(agent: AgentName): string | Record<string, string> {
  return agent === 'reception' ? { reception: 'intent' } : agent;
}

const memo = new WeakMap<Flow, Map<string, Record<AgentName, ControlRequest[]>>>();

/**
 * Every agent's accepted requests for a call with `input`, derived once per distinct input.
 * Call it outside a machine action: XState warns when a machine is evaluated inside one.
 */
export function offersFor(
  input: CallInput,
  flow: Flow = DEFAULT_FLOW,
): Record<AgentName, ControlRequest[]> {
  let byInput = memo.get(flow);
  if (!byInput) memo.set(flow, (byInput = new Map()));
  const key = JSON.stringify(input);
  let offers = byInput.get(key);
  if (!offers) {
    offers = Object.fromEntries(
      agentsOf(flow).map((agent) => [agent, acceptedRequests(agent, input, flow)]),
    );
    byInput.set(key, offers);
  }
  return offers;
}

/** The control requests `agent`'s state accepts, in the order tools are offered. */
export function acceptedRequests(
  agent: AgentName,
  input: CallInput,
  flow: Flow = DEFAULT_FLOW,
): ControlRequest[] {
  const machine = machineFor(flow);
  const initial = getInitialSnapshot(machine, input);
  const snapshot = machine.resolveState({
    value: stateValueOf(agent),
    context: { ...initial.context, started: true },
  });
  return candidates(flow).filter((request) => {
    const after = getNextSnapshot(machine, snapshot, eventFor(request));
    return (
      after.context.refusals.length === snapshot.context.refusals.length &&
      (callStateOf(after) !== callStateOf(snapshot) ||
        after.context.handoffs.length > snapshot.context.handoffs.length)
    );
  });
}
