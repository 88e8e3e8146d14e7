/**
 * An `llm.LLM` whose replies come from a plain function of the request (a "brain").
 * The offline console model and the tests' scripted model are both brains; the same brain can
 * also be served over HTTP as an OpenAI-compatible server, so the real OpenAI plugin can be tested
 * (`requestFromOpenAI` reads a chat-completions body into the same request).
 */
import { DEFAULT_API_CONNECT_OPTIONS, type APIConnectOptions, llm } from '@livekit/agents';

/** The part of a model request a brain reads, independent of the wire format. */
export interface ModelRequest {
  /** System and developer messages, joined. */
  instructions: string;
  messages: ModelMessage[];
  /** Names of the tools offered. */
  tools: string[];
}

export type ModelMessage =
  | { role: 'user' | 'assistant'; text: string }
  | { role: 'tool_call'; name: string; args: string }
  | { role: 'tool_result'; name: string; output: string };

export interface ModelReply {
  text?: string;
  toolCalls?: { name: string; args: Record<string, unknown> }[];
}

/** A brain may answer later (tests use that to hold a reply while something else happens). */
export type Brain = (request: ModelRequest) => ModelReply | Promise<ModelReply>;

export function requestFromChatContext(
  chatCtx: llm.ChatContext,
  toolCtx: llm.ToolContext | undefined,
): ModelRequest {
  const instructions: string[] = [];
  const messages: ModelMessage[] = [];
  for (const item of chatCtx.items) {
    if (item.type === 'message') {
      const text = item.textContent ?? '';
      if (item.role === 'system' || item.role === 'developer') instructions.push(text);
      else messages.push({ role: item.role, text });
    } else if (item.type === 'function_call') {
      messages.push({ role: 'tool_call', name: item.name, args: item.args });
    } else if (item.type === 'function_call_output') {
      messages.push({ role: 'tool_result', name: item.name, output: item.output });
    }
  }
  return {
    instructions: instructions.join('\n'),
    messages,
    tools: Object.keys(toolCtx?.functionTools ?? {}),
  };
}

/** One message of an OpenAI chat-completions request body, as it arrives on the wire. */
export interface ChatCompletionsMessage {
  role: string;
  content?: string | { type: string; text?: string }[] | null;
  tool_calls?: { id: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

/** The part of an OpenAI chat-completions request body that servers standing in for it read. */
export interface ChatCompletionsRequest {
  model: string;
  stream?: boolean;
  messages: ChatCompletionsMessage[];
  tools?: { type?: string; function: { name: string } }[];
  tool_choice?: unknown;
}

/**
 * What a brain reads from an OpenAI chat-completions request: the same `ModelRequest` as
 * `requestFromChatContext` builds in process, so one brain answers both ways (the tests'
 * OpenAI-compatible server and the benchmark's model server serve brains with it).
 */
export function requestFromOpenAI(body: ChatCompletionsRequest): ModelRequest {
  const instructions: string[] = [];
  const messages: ModelMessage[] = [];
  const toolNames = new Map<string, string>();
  for (const message of body.messages) {
    const text =
      typeof message.content === 'string'
        ? message.content
        : (message.content ?? []).map((part) => part.text ?? '').join('');
    if (message.role === 'system' || message.role === 'developer') instructions.push(text);
    else if (message.role === 'user') messages.push({ role: 'user', text });
    else if (message.role === 'assistant') {
      if (text) messages.push({ role: 'assistant', text });
      for (const toolCall of message.tool_calls ?? []) {
        toolNames.set(toolCall.id, toolCall.function.name);
        messages.push({
          role: 'tool_call',
          name: toolCall.function.name,
          args: toolCall.function.arguments,
        });
      }
    } else if (message.role === 'tool') {
      const name = toolNames.get(message.tool_call_id ?? '') ?? 'unknown';
      messages.push({ role: 'tool_result', name, output: text });
    }
  }
  return {
    instructions: instructions.join('\n'),
    messages,
    tools: (body.tools ?? []).map((tool) => tool.function.name),
  };
}

export class ScriptedLLM extends llm.LLM {
  readonly #brain: Brain;
  readonly #label: string;
  /** Every request this model received, oldest first (tests read these). */
  readonly requests: ModelRequest[] = [];

  constructor(brain: Brain, label = 'scripted') {
    super();
    this.#brain = brain;
    this.#label = label;
  }

  label(): string {
    return this.#label;
  }

  override get model(): string {
    return this.#label;
  }

  chat({
    chatCtx,
    toolCtx,
    connOptions = DEFAULT_API_CONNECT_OPTIONS,
  }: {
    chatCtx: llm.ChatContext;
    toolCtx?: llm.ToolContextLike;
    connOptions?: APIConnectOptions;
  }): llm.LLMStream {
    return new ScriptedStream(this, { chatCtx, ...(toolCtx ? { toolCtx } : {}), connOptions });
  }

  /** @internal */
  answer(request: ModelRequest): ModelReply | Promise<ModelReply> {
    this.requests.push(request);
    return this.#brain(request);
  }
}

let callCounter = 0;

class ScriptedStream extends llm.LLMStream {
  readonly #model: ScriptedLLM;

  constructor(
    model: ScriptedLLM,
    params: {
      chatCtx: llm.ChatContext;
      toolCtx?: llm.ToolContextLike;
      connOptions: APIConnectOptions;
    },
  ) {
    super(model, params);
    this.#model = model;
  }

  protected async run(): Promise<void> {
    const reply = await this.#model.answer(requestFromChatContext(this.chatCtx, this.toolCtx));
    const id = `scripted-${++callCounter}`;
    if (reply.text) {
      this.queue.put({ id, delta: { role: 'assistant', content: reply.text } });
    }
    if (reply.toolCalls?.length) {
      const toolCalls = reply.toolCalls.map((call, index) =>
        llm.FunctionCall.create({
          callId: `${id}-${index}`,
          name: call.name,
          args: JSON.stringify(call.args),
        }),
      );
      this.queue.put({ id, delta: { role: 'assistant', toolCalls } });
    }
  }
}
