/**
 * Each agent's business tools: what it can look up or do for the caller, offered next to the
 * control tools the machine allows. Add yours here (see "Make it yours" in the README).
 */
import type { AgentName } from '../../machines/callMachine.js';
import type { AnyFunctionTool } from '../call/tools.js';
import { lookupInvoiceTool } from './invoices.js';

export function businessTools(agent: AgentName): AnyFunctionTool[] {
  switch (agent) {
    case 'billing':
      return [lookupInvoiceTool()];
    default:
      return [];
  }
}
