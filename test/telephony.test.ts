/**
 * Telephony against a stand-in for LiveKit's server API (Twirp): trunk setup and its re-run,
 * outbound dispatch and dialling, human transfer, keypad, and caller identity, through the real
 * SDK, session, machine and bridge.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ParticipantKind } from '@livekit/rtc-node';
import { SipClient } from 'livekit-server-sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CallBridge } from '../src/call/bridge.js';
import { main as placeCall } from '../src/cli/placeCall.js';
import { main as setupTelephony } from '../src/cli/setupTelephony.js';
import { createLogger } from '../src/logging.js';
import { ScriptedLLM } from '../src/models/scriptedLlm.js';
import { voice } from '@livekit/agents';
import {
  LiveKitTelephony,
  callerFromParticipant,
  dialOrAbandon,
  dialOut,
} from '../src/livekit/telephony.js';
import {
  type LiveKitApiStandIn,
  type TwirpOutcome,
  sipFailure,
  startLiveKitApiStandIn,
} from './fakes/livekitApi.js';
import { call, handoffTo, scriptedBrain } from './fakes/model.js';
import { freePort, runMain } from './support.js';
import { startTestCall } from './fakes/session.js';

const ROOT = join(import.meta.dirname, '..');
let api: LiveKitApiStandIn;
beforeEach(async () => {
  api = await startLiveKitApiStandIn();
});
afterEach(() => api.close());

const VOBIZ = {
  VOBIZ_SIP_DOMAIN: 'a1b2c3.sip.vobiz.ai',
  VOBIZ_USERNAME: 'acme_user',
  VOBIZ_PASSWORD: 's3cret-pass',
  VOBIZ_OUTBOUND_NUMBER: '+918041234567',
  AGENT_NAME: 'acme-calls',
};

/** The command as a child process: what `npm run setup:telephony` and `npm run call` start. */
function runProcess(script: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'cli', script), ...args],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', ...env },
        timeout: 30_000,
      },
      (error, stdout, stderr) =>
        resolve({ code: (error as { code?: number } | null)?.code ?? 0, stdout, stderr }),
    );
  });
}

/**
 * The command's `main(argv, env)` in this process: the same code and output without a Node start
 * per run. One test per command (below) runs it as a child process, entry point included.
 */
function run(
  script: 'setupTelephony.ts' | 'placeCall.ts',
  args: string[],
  env: Record<string, string>,
) {
  return runMain(script === 'setupTelephony.ts' ? setupTelephony : placeCall, args, env);
}

const liveKitEnv = () => ({
  LIVEKIT_URL: api.url,
  LIVEKIT_API_KEY: api.apiKey,
  LIVEKIT_API_SECRET: api.apiSecret,
});

describe('npm run setup:telephony', () => {
  it('creates one inbound trunk, one outbound trunk and one dispatch rule, and nothing on a re-run', async () => {
    const first = await run('setupTelephony.ts', [], { ...liveKitEnv(), ...VOBIZ });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/inbound trunk\s+acme-calls-inbound\s+created\s+ST_/);
    expect(first.stdout).toMatch(/OUTBOUND_TRUNK_ID=ST_/);
    expect(api.requests.every((r) => r.authorized)).toBe(true);

    const creates = api.requests.filter((r) => r.method.startsWith('Create'));
    expect(creates.map((r) => r.method)).toEqual([
      'CreateSIPInboundTrunk',
      'CreateSIPOutboundTrunk',
      'CreateSIPDispatchRule',
    ]);
    expect(creates[0]!.body).toEqual({
      trunk: {
        name: 'acme-calls-inbound',
        numbers: ['+918041234567'],
        allowedAddresses: ['13.233.44.61/32'],
      },
    });
    expect(creates[1]!.body).toEqual({
      trunk: {
        name: 'acme-calls-outbound',
        address: 'a1b2c3.sip.vobiz.ai',
        numbers: ['+918041234567'],
        authUsername: 'acme_user',
        authPassword: 's3cret-pass',
      },
    });
    const inboundId = api.inboundTrunks[0]!.sipTrunkId;
    expect(creates[2]!.body).toEqual({
      rule: { dispatchRuleIndividual: { roomPrefix: 'call-' } },
      trunkIds: [inboundId],
      name: 'acme-calls-dispatch',
      roomConfig: { agents: [{ agentName: 'acme-calls' }] },
    });

    const before = api.requests.length;
    const second = await run('setupTelephony.ts', [], { ...liveKitEnv(), ...VOBIZ });
    expect(second.code).toBe(0);
    const rerun = api.requests.slice(before).map((r) => r.method);
    expect(rerun).toEqual(['ListSIPInboundTrunk', 'ListSIPOutboundTrunk', 'ListSIPDispatchRule']);
    expect(second.stdout.match(/unchanged/g)).toHaveLength(3);
    expect(api.inboundTrunks).toHaveLength(1);
    expect(api.outboundTrunks).toHaveLength(1);
    expect(api.dispatchRules).toHaveLength(1);
  });

  it('updates, by name, what changed', async () => {
    await run('setupTelephony.ts', [], { ...liveKitEnv(), ...VOBIZ });
    const before = api.requests.length;
    const result = await run('setupTelephony.ts', [], {
      ...liveKitEnv(),
      ...VOBIZ,
      VOBIZ_ALLOWED_ADDRESSES: '13.233.44.61/32,203.0.113.0/24',
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/inbound trunk\s+acme-calls-inbound\s+updated/);
    const methods = api.requests.slice(before).map((r) => r.method);
    expect(methods).toContain('UpdateSIPInboundTrunk');
    expect(methods.some((m) => m.startsWith('Create'))).toBe(false);
    expect(api.inboundTrunks[0]!.allowedAddresses).toEqual(['13.233.44.61/32', '203.0.113.0/24']);
  });

  it('--dry-run prints the requests and sends nothing', async () => {
    const result = await run('setupTelephony.ts', ['--dry-run'], { ...liveKitEnv(), ...VOBIZ });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('POST /twirp/livekit.SIP/CreateSIPInboundTrunk');
    expect(result.stdout).toContain('"address":"a1b2c3.sip.vobiz.ai"');
    expect(result.stdout).not.toContain('s3cret-pass');
    expect(api.requests).toEqual([]);
  });

  it('names a missing variable in one line', async () => {
    const { VOBIZ_PASSWORD: _, ...partial } = VOBIZ;
    const result = await run('setupTelephony.ts', [], { ...liveKitEnv(), ...partial });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'setup:telephony: Missing VOBIZ_PASSWORD: set them in .env (see .env.example).\n',
    );
  });

  it('with nothing set, names the LiveKit and the Vobiz variables in one line', async () => {
    const result = await run('setupTelephony.ts', [], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'setup:telephony: Missing LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET, ' +
        'VOBIZ_SIP_DOMAIN, VOBIZ_USERNAME, VOBIZ_PASSWORD, VOBIZ_OUTBOUND_NUMBER: ' +
        'set them in .env (see .env.example).\n',
    );
  });

  it('names the variable and the host when LiveKit cannot be reached', async () => {
    const port = await freePort();
    const result = await run('setupTelephony.ts', [], {
      ...liveKitEnv(),
      LIVEKIT_URL: `http://127.0.0.1:${port}`,
      ...VOBIZ,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `setup:telephony: setup failed: cannot reach LiveKit at 127.0.0.1:${port} (ECONNREFUSED): ` +
        'check LIVEKIT_URL and that the server is running\n',
    );
  });

  it('answers an unknown flag with the usage, exit 2', async () => {
    const result = await runProcess('setupTelephony.ts', ['--bogus'], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^setup:telephony: Unknown option '--bogus'\nUsage: npm run setup:telephony/,
    );
  });
});

describe('npm run call', () => {
  it('dispatches the worker into a new room with the number in the metadata', async () => {
    const result = await runProcess('placeCall.ts', ['+919876543210'], {
      ...liveKitEnv(),
      AGENT_NAME: 'acme-calls',
      OUTBOUND_TRUNK_ID: 'ST_out',
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const [dispatch] = api.requests;
    expect(dispatch).toMatchObject({ service: 'AgentDispatchService', method: 'CreateDispatch' });
    expect(dispatch!.body.agentName).toBe('acme-calls');
    expect(dispatch!.body.room).toMatch(/^outbound-[0-9a-f]{8}$/);
    expect(JSON.parse(dispatch!.body.metadata as string)).toEqual({
      dial: { phoneNumber: '+919876543210' },
    });
  });

  it('refuses a number that is not E.164', async () => {
    const result = await run('placeCall.ts', ['98765'], {
      ...liveKitEnv(),
      OUTBOUND_TRUNK_ID: 'x',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/usage: npm run call -- \+<country code><number>/);
    expect(api.requests).toEqual([]);
  });

  it('says why a number is refused', async () => {
    const result = await run('placeCall.ts', ['+91-98765-43210'], {
      ...liveKitEnv(),
      OUTBOUND_TRUNK_ID: 'x',
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^call: "\+91-98765-43210" has characters other than digits/);
  });
});

describe('outbound dialling', () => {
  const request = {
    trunkId: 'ST_out',
    number: '+919876543210',
    roomName: 'outbound-1',
    participantIdentity: 'callee-919876543210',
    ringingTimeoutInS: 25,
  };
  const sip = () => new SipClient(api.url, api.apiKey, api.apiSecret);

  it('dials through the outbound trunk and waits until answered', async () => {
    expect(await dialOut(sip(), request)).toEqual({ ok: true });
    expect(api.requests[0]!.body).toEqual({
      sipTrunkId: 'ST_out',
      sipCallTo: '+919876543210',
      roomName: 'outbound-1',
      participantIdentity: 'callee-919876543210',
      ringingTimeout: '25s',
      waitUntilAnswered: true,
    });
  });

  it.each([
    [sipFailure(480, 'Temporarily Unavailable'), 'no-answer'],
    [sipFailure(486, 'Busy Here'), 'busy'],
    [{ ok: false as const, status: 500, code: 'internal', msg: 'trunk down' }, 'failed'],
  ])(
    'ends the call with the reason when the callee does not answer (%#)',
    async (outcome, reason) => {
      api.script('CreateSIPParticipant', outcome);
      // As the worker does: the session is not started yet; dial, and on failure end the call.
      const session = new voice.AgentSession({ llm: new ScriptedLLM(scriptedBrain()) });
      const bridge = new CallBridge({ session, companyName: 'Acme', maxHandoffs: 4 });
      expect(await dialOrAbandon(bridge, sip(), request)).toBe(false);
      const end = await bridge.done;
      expect(end.reason).toBe(reason);
      expect(end.context.endReason).toBe(reason);
      expect(bridge.speakingAgent).toBeNull(); // nobody was ever put on the line
    },
  );
});

describe('human transfer', () => {
  const script = {
    'I want billing': { toolCalls: [handoffTo('billing')] },
    'let me talk to a person': {
      toolCalls: [call('transfer_to_human', { reason: 'wants a person' })],
    },
    'still there?': { text: 'Yes, I am here.' },
  };
  const start = (numbers = { billing: '+918000000001' }) =>
    startTestCall({
      script,
      telephony: new LiveKitTelephony(
        new SipClient(api.url, api.apiKey, api.apiSecret),
        'call-room',
        'sip-caller',
      ),
      humanNumbers: numbers,
    });

  it('tells the caller, cold-transfers with SIP REFER, and ends with reason transferred', async () => {
    const c = await start();
    await c.say('I want billing');
    await c.say('let me talk to a person');
    const end = await c.bridge.done;
    expect(end.reason).toBe('transferred');
    expect(c.said('billing')).toContain(
      "I'm transferring you to a colleague in billing now. Please hold.",
    );
    expect(c.said('billing').some((t) => /Goodbye/.test(t))).toBe(false);
    const refer = api.requests.find((r) => r.method === 'TransferSIPParticipant')!;
    expect(refer.body).toMatchObject({
      roomName: 'call-room',
      participantIdentity: 'sip-caller',
      transferTo: 'tel:+918000000001',
    });
  });

  /** The caller leaves the room while the REFER is under way; then it answers `outcome`. */
  async function leaveDuringRefer(outcome: TwirpOutcome) {
    const held = api.hold('TransferSIPParticipant');
    const c = await start();
    await c.say('I want billing');
    const asked = c.say('let me talk to a person');
    await held.arrived;
    c.bridge.callerHungUp();
    c.session.shutdown({ drain: false, reason: voice.CloseReason.PARTICIPANT_DISCONNECTED });
    held.answer(outcome);
    await asked.catch(() => undefined);
    return { c, end: await c.bridge.done };
  }

  it('counts the caller leaving during a successful REFER as transferred, not hung up', async () => {
    // LiveKit removes the transferred caller from the room before the REFER call returns.
    const { end } = await leaveDuringRefer({ ok: true });
    expect(end.reason).toBe('transferred');
  });

  it('ends as hung up, with no apology, when the caller leaves and the REFER then fails', async () => {
    const { c, end } = await leaveDuringRefer(sipFailure(487, 'Request Terminated'));
    expect(end.reason).toBe('caller-hung-up');
    expect(c.bridge.actor.getSnapshot().context.transfer?.error).toBeUndefined();
    expect(c.said('billing').some((t) => t.startsWith('Sorry'))).toBe(false);
  });

  it('returns to the department when the transfer fails, and the agent apologises and continues', async () => {
    api.script('TransferSIPParticipant', sipFailure(408, 'Request Timeout'));
    const c = await start();
    await c.say('I want billing');
    await c.say('let me talk to a person');
    const model = c.model as ScriptedLLM;
    // The apology is the billing agent's next words after the failed REFER.
    await c.until(
      () => c.bridge.state === 'billing' && c.said('billing').some((t) => t.startsWith('Sorry')),
      'the apology',
    );
    expect(model.requests.some((r) => r.instructions.includes('did not go through'))).toBe(true);
    expect(c.bridge.actor.getSnapshot().context.transfer).toMatchObject({
      from: 'billing',
      error: expect.stringMatching(/408/),
    });
    const result = await c.say('still there?');
    result.expect.containsMessage({ role: 'assistant' });
    expect(c.bridge.state).toBe('billing');
    c.bridge.callerHungUp();
    await c.bridge.done;
  });

  it('does not offer the tool where no number is configured', async () => {
    const c = await start({ billing: '+918000000001' });
    await c.say('I want billing');
    const tools = (agent: string) =>
      (c.model as ScriptedLLM).requests.filter((r) =>
        r.instructions.includes(`You are the ${agent}`),
      )[0]!.tools;
    expect(tools('billing specialist')).toContain('transfer_to_human');
    expect(tools('receptionist')).not.toContain('transfer_to_human');
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});

describe('keypad', () => {
  it('maps digits to the same machine events, with the same guards and spoken refusals', async () => {
    const c = await startTestCall({ keypad: { '1': 'billing', '2': 'support', '0': 'human' } });
    expect(c.bridge.keypad('7')).toBeNull(); // not assigned

    expect(c.bridge.keypad('1')).toEqual({ accepted: true, state: 'billing' });
    await c.until(() => c.bridge.speakingAgent === 'billing', 'billing on the line');
    expect(c.bridge.actor.getSnapshot().context.handoffs.at(-1)).toMatchObject({
      from: 'reception',
      to: 'billing',
      reason: 'billing, chosen on the keypad (1)',
    });

    expect(c.bridge.keypad('1')).toMatchObject({ accepted: false, code: 'same-department' });
    expect(c.bridge.keypad('0')).toMatchObject({ accepted: false, code: 'no-human' });
    await c.until(
      () => c.said('billing').some((t) => /can't connect you to a person/.test(t)),
      'the spoken refusal',
    );
    expect(c.said('billing')).toContain("You're in the right place, I can help with that.");
    expect(c.bridge.state).toBe('billing');
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});

describe('caller identity', () => {
  it('puts the SIP number and call id in the machine and the brief, masked in logs', async () => {
    const caller = callerFromParticipant({
      kind: ParticipantKind.SIP,
      name: 'Asha Rao',
      attributes: { 'sip.phoneNumber': '+919812345678', 'sip.callID': 'SCL_42' },
    });
    const c = await startTestCall({
      caller,
      script: { billing: { toolCalls: [handoffTo('billing')] } },
    });
    expect(c.bridge.actor.getSnapshot().context.caller).toEqual({
      number: '+919812345678',
      callId: 'SCL_42',
      name: 'Asha Rao',
    });
    await c.say('billing');
    const brief = (c.model as ScriptedLLM).requests.find((r) =>
      r.instructions.includes('Handoff brief'),
    )!;
    expect(brief.instructions).toContain('Caller number: +919812345678');

    let written = '';
    const sink = new Writable({
      write: (chunk, _enc, done) => {
        written += String(chunk);
        done();
      },
    });
    createLogger({ level: 'info', pii: false, destination: sink }).info(
      { caller },
      'caller joined',
    );
    expect(written).toContain('+91********78');
    expect(written).toContain('SCL_42');
    expect(written).not.toContain('9812345678');
    expect(written).not.toContain('Asha');
    c.bridge.callerHungUp();
    await c.bridge.done;
  });
});
