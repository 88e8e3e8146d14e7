/**
 * The human-transfer effect: tell the caller, cold-transfer them with a SIP REFER, and report the
 * outcome to the machine (`transfer.succeeded` / `transfer.failed`). A caller who leaves while the
 * REFER is under way is settled by its outcome: a successful REFER takes the caller out of the
 * room before the API call returns, so that departure is the transfer, not a hang-up.
 */
import type { Logger } from 'pino';
import type { AgentName, CallEvent, TransferRecord } from '../machines/callMachine.js';
import { LINES } from './lines.js';
import type { CallTelephony } from './telephony.js';

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
  #inFlight = false;
  #hangUpPending = false;

  constructor(
    private readonly telephony: CallTelephony | undefined,
    private readonly numbers: Partial<Record<AgentName, string>>,
  ) {}

  /** Where a transfer from this agent goes; none without telephony (the console). */
  numberFor(agent: AgentName): string | undefined {
    return this.telephony ? this.numbers[agent] : undefined;
  }

  /** True when a hang-up has to wait for the REFER under way, which then settles it. */
  deferHangUp(): boolean {
    if (!this.#inFlight) return false;
    this.#hangUpPending = true;
    return true;
  }

  async run(host: TransferHost, from: AgentName, transfer: TransferRecord | null): Promise<void> {
    const number = this.numberFor(from);
    const reason = transfer?.reason;
    try {
      if (!number || !this.telephony) throw new Error('no transfer number');
      await host.speak(LINES.transferring(from, transfer?.cause ?? 'requested'));
      if (!host.isLive()) return; // hung up meanwhile
      this.#inFlight = true;
      await this.telephony.transferCaller(number);
      host.log.info({ from, reason }, 'caller transferred');
      if (host.isLive()) host.send({ type: 'transfer.succeeded' });
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      host.log.warn({ from, error: detail }, 'transfer failed');
      // A caller who left while the REFER was failing has hung up; nobody to apologise to.
      if (host.isLive()) {
        host.send(
          this.#hangUpPending
            ? { type: 'caller.hungUp' }
            : { type: 'transfer.failed', error: detail },
        );
      }
    } finally {
      this.#inFlight = false;
      this.#hangUpPending = false;
    }
  }
}
