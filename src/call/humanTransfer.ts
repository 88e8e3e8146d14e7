/**
 * The human-transfer effect: tell the caller, cold-transfer them with a SIP REFER, and report to
 * the machine what happens (`transfer.referring`, then `transfer.succeeded` / `transfer.failed`).
 * What a caller leaving during the REFER means is the machine's to decide (`transferring`).
 */
import type { Logger } from 'pino';
import type { AgentName, CallEvent, TransferRecord } from '../../machines/callMachine.js';
import { LINES } from './lines.js';
import type { CallTelephony } from '../livekit/telephony.js';

/** What the transfer needs from the bridge. */
export interface TransferHost {
  /** Speak a fixed line and wait until it has played. */
  speak(text: string): Promise<void>;
  /** The call is still going (the machine has not ended). */
  isLive(): boolean;
  send(event: CallEvent): void;
  log: Logger;
}

export class HumanTransfer {
  constructor(
    private readonly telephony: CallTelephony | undefined,
    private readonly numbers: Partial<Record<AgentName, string>>,
  ) {}

  /** Where a transfer from this agent goes; none without telephony (the console). */
  numberFor(agent: AgentName): string | undefined {
    return this.telephony ? this.numbers[agent] : undefined;
  }

  async run(host: TransferHost, from: AgentName, transfer: TransferRecord | null): Promise<void> {
    const number = this.numberFor(from);
    const reason = transfer?.reason;
    try {
      if (!number || !this.telephony) throw new Error('no transfer number');
      await host.speak(LINES.transferring(from, transfer?.cause ?? 'requested'));
      if (!host.isLive()) return; // hung up meanwhile
      host.send({ type: 'transfer.referring' });
      await this.telephony.transferCaller(number);
      host.log.info({ from, reason }, 'caller transferred');
      if (host.isLive()) host.send({ type: 'transfer.succeeded' });
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      host.log.warn({ from, error: detail }, 'transfer failed');
      if (host.isLive()) host.send({ type: 'transfer.failed', error: detail });
    }
  }
}
