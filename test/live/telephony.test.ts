/**
 * The telephony side against a real LiveKit server with Redis: `npm run setup:telephony`
 * provisions trunks and the dispatch rule (a second run changes nothing), and a caller that joins
 * as LiveKit's SIP service joins a phone call (token kind 'sip', `sip.*` attributes): the number
 * reaches the specialist's brief but not the logs, keypad tones sent with publishDtmf take the
 * keypad path (2: support answers in its voice), and `sip.callStatus` = hangup ends the call.
 * Dialling out and SIP REFER need LiveKit's SIP service, which cannot be had here: they stay on
 * the Twirp stand-in (test/telephony.test.ts).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { SipClient } from 'livekit-server-sdk';
import { expect, it } from 'vitest';
import { describeLive } from './gate.js';
import { greetedCall, useRig } from './rig.js';

const ROOT = join(import.meta.dirname, '..', '..');
const NUMBER = '+918041234567';
const VOBIZ = {
  VOBIZ_SIP_DOMAIN: 'a1b2c3.sip.vobiz.ai',
  VOBIZ_USERNAME: 'acme_user',
  VOBIZ_PASSWORD: 's3cret-pass',
  VOBIZ_OUTBOUND_NUMBER: NUMBER,
  AGENT_NAME: 'acme-calls',
};

describeLive('telephony against a real LiveKit server', () => {
  const live = useRig();

  function setupTelephony() {
    const { rig } = live;
    return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src', 'cli', 'setupTelephony.ts')],
        {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? '', ...rig.stack.env, ...VOBIZ },
          timeout: 60_000,
        },
        (error, stdout, stderr) =>
          resolve({ code: (error as { code?: number } | null)?.code ?? 0, stdout, stderr }),
      );
    });
  }

  it('npm run setup:telephony creates the trunks and the dispatch rule; a second run changes nothing', async () => {
    const { rig } = live;
    const first = await setupTelephony();
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout.match(/ created /g)).toHaveLength(3);

    const sip = new SipClient(rig.stack.url, rig.stack.apiKey, rig.stack.apiSecret);
    const inbound = await sip.listSipInboundTrunk();
    const outbound = await sip.listSipOutboundTrunk();
    const rules = await sip.listSipDispatchRule();
    expect(inbound.map((t) => [t.name, t.numbers])).toEqual([['acme-calls-inbound', [NUMBER]]]);
    expect(outbound.map((t) => [t.name, t.address])).toEqual([
      ['acme-calls-outbound', 'a1b2c3.sip.vobiz.ai'],
    ]);
    expect(rules).toHaveLength(1);
    expect(rules[0]!.trunkIds).toEqual([inbound[0]!.sipTrunkId]);
    expect(rules[0]!.roomConfig?.agents.map((a) => a.agentName)).toEqual(['acme-calls']);

    const second = await setupTelephony();
    expect(second.code).toBe(0);
    expect(second.stdout.match(/ unchanged /g)).toHaveLength(3);
    expect(await sip.listSipInboundTrunk()).toHaveLength(1);
    expect(await sip.listSipOutboundTrunk()).toHaveLength(1);
    expect(await sip.listSipDispatchRule()).toHaveLength(1);
  });

  it('a SIP caller: number in the brief not the logs, keypad 2 brings support, callStatus hangup ends the call', async () => {
    const { rig, worker } = live;
    const room = 'call-sip-1';
    const { caller } = await greetedCall(rig, room, { sip: { phoneNumber: NUMBER } });

    const requestsBefore = rig.model.requests.length;
    await caller.keypad('2');
    await caller.waitForHeard((h) => h.agent === 'support', 30_000, 'support, after keypad 2');
    const briefs = rig.model.requests
      .slice(requestsBefore)
      .flatMap((r) => r.messages.filter((m) => m.role === 'system' || m.role === 'developer'))
      .map((m) => JSON.stringify(m.content));
    expect(briefs.some((b) => b.includes(`Caller number: ${NUMBER}`))).toBe(true);

    await caller.setCallStatus('hangup');
    const ended = await worker.waitForLog(
      (l) => l.msg === 'call ended' && l.room === room,
      5_000,
      'the call ends on sip.callStatus hangup',
    );
    expect(ended.reason).toBe('caller-hung-up');
    await caller.agentLeft(10_000);
    expect(worker.logs.some((l) => JSON.stringify(l).includes(NUMBER.slice(3)))).toBe(false);
  });
});
