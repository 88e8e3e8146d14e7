/**
 * The scripted model: a brain that answers the way an LLM would, for `ScriptedLLM` in process
 * (src/models/scriptedLlm.ts) or served over HTTP by ./openaiServer.ts. Caller lines are looked
 * up in a script; fixed lines, openings after a handoff, resumptions and tool errors are answered
 * as the production prompts ask.
 */
import type { Brain, ModelReply, ModelRequest } from '../../src/models/scriptedLlm.js';
import { agentOf } from '../../src/models/offlineBrain.js';

export type ScriptEntry = ModelReply | ((request: ModelRequest) => ModelReply);

/** Call a tool the way an LLM would. */
export const call = (name: string, args: Record<string, unknown> = {}) => ({ name, args });

export const handoffTo = (department: string, reason = `${department} question`) =>
  call(`pass_control_to_${department}`, {
    reason,
    summary: `Summary for ${department}: ${reason}.`,
  });

/**
 * The shared scripted model. Caller lines are looked up in `script`; an agent's first turn after
 * a handoff acknowledges the reason; a tool error is read back to the caller.
 */
export function scriptedBrain(script: Record<string, ScriptEntry> = {}): Brain {
  return (request) => {
    const self = agentOf(request);
    const fixedLine = /Say exactly this, and nothing else: "(.*)"$/m.exec(request.instructions);
    if (fixedLine) return { text: fixedLine[1]! };
    const reason = /^Reason to acknowledge: (.*)$/m.exec(request.instructions);
    if (request.instructions.includes('Opening:') && reason) {
      return { text: `${self} here, about ${reason[1]}.` };
    }
    if (request.instructions.includes('Resuming:')) {
      const lastCaller = request.messages.filter((m) => m.role === 'user').at(-1);
      return {
        text: `${self} again, sorry about that. You were saying: ${lastCaller?.role === 'user' ? lastCaller.text : ''}`,
      };
    }
    if (request.instructions.includes('did not go through')) {
      return { text: 'Sorry, the transfer did not go through. I will keep helping you.' };
    }
    const last = request.messages.at(-1);
    if (last?.role === 'tool_result') return { text: `Sorry: ${last.output}` };
    if (last?.role !== 'user') return {};
    const entry = script[last.text];
    if (entry === undefined) return { text: `${self} heard: ${last.text}` };
    return typeof entry === 'function' ? entry(request) : entry;
  };
}
