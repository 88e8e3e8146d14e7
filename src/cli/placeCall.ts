/**
 * `npm run call -- +91XXXXXXXXXX`: an outbound call. Dispatches the worker into a new room with
 * the number in the job metadata; the worker dials it through the outbound trunk and runs the
 * same call machine once the callee answers.
 */
import { isEntryPoint } from './entry.js';
import { randomBytes } from 'node:crypto';
import { AgentDispatchClient } from 'livekit-server-sdk';
import { ConfigError, e164Problem, loadConfig, requireVariables } from '../config.js';
import { describeLiveKitFailure } from '../livekit/livekitErrors.js';
import { encodeDialRequest } from '../livekit/telephony.js';

/**
 * `npm run call -- NUMBER`; `env` instead of `.env` and the process's. Resolves with the exit
 * code: 0, 2 for a bad number or setting, 1 when LiveKit refuses (one line on stderr).
 */
export async function main(argv: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  try {
    return await placeCall(argv, env);
  } catch (error) {
    process.stderr.write(`call: ${(error as Error).message}\n`);
    return error instanceof ConfigError ? 2 : 1;
  }
}

async function placeCall(argv: string[], env: NodeJS.ProcessEnv | undefined): Promise<number> {
  const [number, ...rest] = argv;
  const usage = 'usage: npm run call -- +<country code><number>, e.g. +919876543210';
  if (!number || rest.length > 0) throw new ConfigError(usage);
  const problem = e164Problem(number);
  if (problem) throw new ConfigError(`${problem}; ${usage}`);
  const config = loadConfig(env);
  requireVariables(
    [
      ['LIVEKIT_URL', config.livekit.url],
      ['LIVEKIT_API_KEY', config.livekit.apiKey],
      ['LIVEKIT_API_SECRET', config.livekit.apiSecret],
      ['OUTBOUND_TRUNK_ID', config.telephony.outboundTrunkId],
    ],
    'set them in .env (OUTBOUND_TRUNK_ID is printed by npm run setup:telephony).',
  );
  const dispatcher = new AgentDispatchClient(
    config.livekit.url!,
    config.livekit.apiKey!,
    config.livekit.apiSecret!,
  );
  const room = `outbound-${randomBytes(4).toString('hex')}`;
  const dispatch = await dispatcher
    .createDispatch(room, config.agentName, {
      metadata: encodeDialRequest({ phoneNumber: number }),
    })
    .catch((error: unknown) => {
      throw new Error(describeLiveKitFailure(error, config.livekit.url!));
    });
  process.stdout.write(`dispatched ${config.agentName} to room ${room} (${dispatch.id})\n`);
  return 0;
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    () => process.exit(1),
  );
}
