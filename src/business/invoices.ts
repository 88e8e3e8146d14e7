/**
 * A business tool, as a worked example: billing looks up an invoice. The tool reads from
 * `InvoiceBook`, which is where your own system goes (a database, an HTTP API); the sample
 * book answers a few invoice numbers so the console and the tests can show it working.
 *
 * Business tools never decide who talks: they answer the caller's question. Control (handoffs,
 * transfers, the end) stays with the machine's tools.
 */
import { llm } from '@livekit/agents';
import { z } from 'zod';

export interface Invoice {
  number: string;
  amount: string;
  status: 'paid' | 'open' | 'refunded';
  issuedOn: string;
}

/** Where invoices come from. Replace the sample with your billing system. */
export interface InvoiceBook {
  find(number: string): Promise<Invoice | undefined>;
}

export const SAMPLE_INVOICES: InvoiceBook = {
  async find(number) {
    const invoices: Invoice[] = [
      { number: '1001', amount: '29.00 USD', status: 'paid', issuedOn: '2026-11-01' },
      { number: '1002', amount: '29.00 USD', status: 'refunded', issuedOn: '2026-11-01' },
      { number: '1003', amount: '49.00 USD', status: 'open', issuedOn: '2026-12-01' },
    ];
    return invoices.find((invoice) => invoice.number === number.replace(/\D/g, ''));
  },
};

const parameters = z.object({
  invoiceNumber: z.string().describe('The invoice number the caller reads out, digits only.'),
});

/** `lookup_invoice`: the invoice's amount, status and date, or that there is no such invoice. */
export function lookupInvoiceTool(book: InvoiceBook = SAMPLE_INVOICES) {
  return llm.tool({
    name: 'lookup_invoice',
    description:
      "Look up one of the caller's invoices by its number: amount, status (paid, open, " +
      'refunded) and date. Ask for the number if the caller has not given it.',
    parameters,
    execute: async ({ invoiceNumber }) => {
      const invoice = await book.find(invoiceNumber);
      return invoice ?? { notFound: `No invoice numbered ${invoiceNumber}.` };
    },
  });
}
