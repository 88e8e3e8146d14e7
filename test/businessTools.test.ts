/**
 * The worked example of a business tool (README, "Make it yours"): billing looks up an invoice.
 * It runs through the production agents, tools and bridge; only billing is offered it, and what
 * it finds reaches the model that answers the caller.
 */
import { describe, expect, it } from 'vitest';
import { businessTools } from '../src/business/index.js';
import { type InvoiceBook, lookupInvoiceTool } from '../src/business/invoices.js';
import type { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { call, handoffTo } from './fakes/model.js';
import { startTestCall } from './fakes/session.js';

const ASK = 'what about invoice 1002';

describe('a business tool: billing looks up an invoice', () => {
  it('is offered to billing only, next to the control tools', async () => {
    const c = await startTestCall({
      extraTools: businessTools,
      script: {
        'my bill is wrong': { toolCalls: [handoffTo('billing')] },
        [ASK]: { toolCalls: [call('lookup_invoice', { invoiceNumber: '1002' })] },
      },
    });
    await c.say('my bill is wrong');
    await c.say(ASK);
    const requests = (c.model as ScriptedLLM).requests;
    const fromReception = requests.find((r) => !r.tools.includes('return_to_reception'))!;
    expect(fromReception.tools).not.toContain('lookup_invoice');
    // The answer after the lookup: the model got the invoice as the tool's output.
    const result = requests.at(-1)!.messages.at(-1)!;
    expect(result).toMatchObject({ role: 'tool_result', name: 'lookup_invoice' });
    expect(JSON.parse((result as { output: string }).output)).toEqual({
      number: '1002',
      amount: '29.00 USD',
      status: 'refunded',
      issuedOn: '2026-11-01',
    });
    expect(c.bridge.state).toBe('billing');
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('says there is no such invoice rather than failing', async () => {
    const none: InvoiceBook = { find: async () => undefined };
    const output = await lookupInvoiceTool(none).execute(
      { invoiceNumber: '42' },
      {
        ctx: undefined as never,
        toolCallId: 'test',
        abortSignal: new AbortController().signal,
      },
    );
    expect(output).toEqual({ notFound: 'No invoice numbered 42.' });
    expect(businessTools('support')).toEqual([]);
  });
});
