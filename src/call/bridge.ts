/**
 * The bridge: one call, as the worker, the console, the voice console, the bench and the tests
 * use it. It makes the live session match the machine, by job:
 *
 * - runtime.ts: the call runtime. Owns the actor (create, restore, start, stop) and takes the
 *   requests (tools, keypad, hang-up, shutdown, the reply guard); its public API is this one.
 * - effects.ts: the session effects, the named effects the machine asks for. The only module
 *   that calls `updateAgent`, `say`, `generateReply` and `close` on the session.
 * - roster.ts: builds each agent (instructions, brief, tools, voice, conversation so far).
 * - persistence.ts: the snapshot kept outside the process for crash recovery.
 * - callEffects.ts: the machine, provided once per flow; each call's effects bound to its actor.
 * - callReporter.ts: observers (transitions, refusals, lines, the end).
 */
export {
  CallRuntime as CallBridge,
  type CallRuntimeOptions as CallBridgeOptions,
  type CallEnd,
  type CallObserver,
  type CallStartOptions,
} from './runtime.js';
