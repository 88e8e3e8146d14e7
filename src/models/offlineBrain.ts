/**
 * The console's offline model: a keyword brain, clearly not an LLM. It recognises billing,
 * support and sales requests, "back to reception" and goodbyes in everyday phrasing, and drives
 * the very same tools an LLM would, so the machine, tools and bridge run for real offline.
 */
import type { AgentName, Department } from '../../machines/callMachine.js';
import { CONTINUATION_PREFIX } from '../call/fastHandoff.js';
import { DEFAULT_FLOW, type Flow, departmentOf, spokenList } from '../../machines/flow.js';
import { OPENING_PREFIX } from '../call/lines.js';
import { TOOL_NAMES } from '../call/tools.js';
import type { Brain, ModelReply, ModelRequest } from './scriptedLlm.js';

const COMMON_INTENTS = {
  person:
    /\b(a (real )?(person|human)|real person|human being|someone real|an? (agent|operator|representative)|speak to someone|talk to someone)\b/i,
  goodbye:
    /\b(good ?bye|bye|that'?s (all|it)|that is all|nothing else|hang(ing)? up|i'?m (all )?(done|set|good)|have a (nice|good) day)\b/i,
  reception:
    /\b(reception|receptionist|operator|front desk|someone else|wrong (department|team))\b/i,
};

export type Intent = Department | 'goodbye' | 'reception' | 'person';

/** The words the offline model listens for: the common intents, then each department's. */
function intentsOf(flow: Flow): [Intent, RegExp][] {
  return [
    ...(Object.entries(COMMON_INTENTS) as [Intent, RegExp][]),
    ...flow.departments.map((d): [Intent, RegExp] => [d.name, d.offline.listensFor]),
  ];
}

function helpOf(flow: Flow, agent: AgentName): string {
  if (agent === 'reception') return `Is it about ${spokenList(flow)}?`;
  return departmentOf(flow, agent)?.offline.answer ?? 'How can I help?';
}

function topicOf(flow: Flow, agent: AgentName): string {
  return departmentOf(flow, agent)?.offline.topic ?? 'your request';
}

/** "billing... actually no, sales": after a correction, the need named last is the one meant. */
const CORRECTION = /\b(actually|i mean|no wait|sorry,? i meant|rather|instead)\b|\bno,/i;

/** The intent mentioned first in the text (last, after a correction), if any. */
export function classify(
  text: string,
  flow: Flow = DEFAULT_FLOW,
): { intent: Intent; keyword: string } | null {
  const corrected = CORRECTION.test(text);
  let best: { intent: Intent; keyword: string; index: number } | null = null;
  for (const [intent, pattern] of intentsOf(flow)) {
    const global = new RegExp(pattern.source, 'gi');
    for (const match of text.matchAll(global)) {
      const better =
        best === null || (corrected ? match.index > best.index : match.index < best.index);
      if (better) best = { intent, keyword: match[0], index: match.index };
    }
  }
  return best && { intent: best.intent, keyword: best.keyword };
}

const GREETING = /^\s*(hi|hello|hey|good (morning|afternoon|evening)|hiya)\b[\s!.,]*$/i;
const NO_MORE =
  /^\s*(no|nope|nah|no thanks?( you)?|no,? that'?s (all|it)|nothing|not really)\b[\s!.,]*$/i;

/**
 * Which agent a request comes from, read from the tools it offers (the machine decides them):
 * reception has no way back to reception; a department is never offered a handoff to itself.
 */
export function agentOf(request: ModelRequest, flow: Flow = DEFAULT_FLOW): AgentName {
  if (!request.tools.includes(TOOL_NAMES.returnToReception)) return 'reception';
  const self = flow.departments.find((d) => !request.tools.includes(TOOL_NAMES.handoff(d.name)));
  return self?.name ?? 'reception';
}

/** What a refused tool asks the agent to tell the caller (its JSON output's `tell_caller`). */
function tellCaller(output: string): string | undefined {
  try {
    let value: unknown = JSON.parse(output);
    if (typeof value === 'string') value = JSON.parse(value); // JSON-encoded twice on the wire
    const line = (value as { tell_caller?: unknown } | null)?.tell_caller;
    return typeof line === 'string' ? line : undefined;
  } catch {
    return undefined;
  }
}

function shorten(text: string, max = 80): string {
  const clean = text.trim().replace(/\s+/g, ' ');
  return clean.length <= max ? clean : `${clean.slice(0, max - 1)}…`;
}

/** The caller's words without the pleasantries in front: "hi, yes, I was..." -> "I was...". */
function reasonWords(text: string): string {
  const stripped = text.replace(
    /^\s*((hi|hello|hey|yes|yeah|ok(ay)?|so|um|well|also|and)\b[\s,.!]*)+/i,
    '',
  );
  return shorten(stripped || text, 70).replace(/[.!?]+$/, '');
}

function callerLines(request: ModelRequest, count: number): string[] {
  return request.messages
    .filter((m): m is { role: 'user'; text: string } => m.role === 'user')
    .slice(-count)
    .map((m) => m.text.trim());
}

/** The offline model of a flow. */
export function createOfflineBrain(flow: Flow = DEFAULT_FLOW): Brain {
  const HELP = (agent: AgentName) => helpOf(flow, agent);
  return (request) => answer(request, flow, HELP);
}

function answer(request: ModelRequest, flow: Flow, HELP: (agent: AgentName) => string): ModelReply {
  const self = agentOf(request, flow);
  const opening = /^Reason to acknowledge: (.*)$/m.exec(request.instructions);
  if (request.instructions.includes(OPENING_PREFIX) && opening) {
    if (self === 'reception') {
      return {
        text: `Hi, this is reception again. What else can I do for you? ${HELP('reception')}`,
      };
    }
    const reason = opening[1]!.replace(/[.!?]+$/, '');
    return {
      text: `Hi, this is the ${self} team. I understand you're calling about ${reason}. ${HELP(self)}`,
    };
  }

  // What a specialist says after its opening sentence (HANDOFF_OPENING=brief).
  if (request.instructions.includes(CONTINUATION_PREFIX)) return { text: HELP(self) };

  const last = request.messages.at(-1);
  if (last?.role === 'tool_result') {
    // The output may arrive JSON-encoded (quotes escaped).
    return { text: tellCaller(last.output) ?? `Sorry, I can't do that right now. ${HELP(self)}` };
  }
  if (last?.role !== 'user') return {};

  // "No" to "anything else?" is the end of the call, not a new request.
  const asked = request.messages.filter((m) => m.role === 'assistant').at(-1);
  if (NO_MORE.test(last.text) && asked?.role === 'assistant') {
    if (/anything else/i.test(asked.text)) {
      return { toolCalls: [{ name: 'end_call', args: { reason: 'caller has nothing else' } }] };
    }
    return { text: 'Alright. Is there anything else I can help you with?' };
  }
  if (GREETING.test(last.text)) {
    return { text: `Hello! How can I help you today? ${HELP('reception')}` };
  }
  const found = classify(last.text, flow);
  if (found === null) {
    return {
      text:
        self === 'reception'
          ? `Sorry, I didn't catch that. ${HELP('reception')}`
          : `I see. ${HELP(self)}`,
    };
  }
  const { intent } = found;
  if (intent === 'goodbye') {
    return { toolCalls: [{ name: 'end_call', args: { reason: 'caller said goodbye' } }] };
  }
  if (intent === 'person') {
    if (request.tools.includes('transfer_to_human')) {
      return {
        toolCalls: [{ name: 'transfer_to_human', args: { reason: 'caller asked for a person' } }],
      };
    }
    const offer = self === 'reception' ? HELP('reception') : 'What do you need?';
    return {
      text: `I can't put you through to a person from here, but I can help you myself. ${offer}`,
    };
  }
  const summary = `Caller said: ${callerLines(request, 3)
    .map((line) => `"${shorten(line, 160)}"`)
    .join(' ')}`;
  if (intent === 'reception') {
    if (!request.tools.includes('return_to_reception')) return { text: HELP('reception') };
    return {
      toolCalls: [
        {
          name: 'return_to_reception',
          args: { reason: 'the caller asked for reception', summary },
        },
      ],
    };
  }
  if (intent === self) return { text: `I can help with that. ${HELP(self)}` };
  const tool = TOOL_NAMES.handoff(intent);
  if (!request.tools.includes(tool)) return { text: HELP(self) };
  // No words of its own: the bridge speaks the bridge line the moment the handoff is accepted.
  return {
    toolCalls: [
      {
        name: tool,
        args: { reason: `${topicOf(flow, intent)}: "${reasonWords(last.text)}"`, summary },
      },
    ],
  };
}

/** The offline model of the default flow. */
export const offlineBrain: Brain = createOfflineBrain();
