/**
 * `npm run setup:telephony [-- --dry-run] [-- --force]`: create or update, by name, the LiveKit
 * SIP trunks and dispatch rule for Vobiz. Safe to run again: it creates nothing new.
 */
import { isEntryPoint } from './entry.js';
import { parseArgs } from 'node:util';
import { SipClient } from 'livekit-server-sdk';
import { ConfigError, type Config, loadConfig, requireVariables } from '../config.js';
import { describeLiveKitFailure } from '../livekit/livekitErrors.js';
import {
  type ProvisionResult,
  describeRequests,
  planFromConfig,
  provision,
} from '../livekit/provisioning.js';

function nextSteps(config: Config, result: ProvisionResult): string[] {
  const t = config.telephony;
  return [
    '',
    'On the Vobiz side:',
    `  - Inbound: route ${t.inboundNumbers.join(', ') || 'your number'} to your LiveKit SIP URI`,
    '    (LiveKit project settings, e.g. <id>.sip.livekit.cloud; host name only, no "sip:").',
    `  - Calls are accepted only from ${t.allowedAddresses.join(', ')} (VOBIZ_ALLOWED_ADDRESSES).`,
    `  - Outbound: LiveKit calls out through ${t.sipDomain} as ${t.username}; allow that`,
    `    user to call from ${t.outboundNumber}.`,
    '  - Human transfer uses SIP REFER: enable call transfer on the trunk, or transfers fail',
    '    and the agent apologises and keeps helping.',
    '',
    `Set OUTBOUND_TRUNK_ID=${result.outbound.id} in .env for outbound calls (npm run call).`,
  ];
}

const USAGE = `Usage: npm run setup:telephony [-- --dry-run] [-- --force]
  --dry-run   print the requests, send nothing (needs only the VOBIZ_* settings)
  --force     push the trunk credentials again (they cannot be read back to compare)`;

class UsageError extends Error {}

/**
 * `npm run setup:telephony`; `env` instead of `.env` and the process's. Resolves with the exit
 * code: 0, 2 for a bad flag or setting, 1 when LiveKit refuses or cannot be reached (each with
 * one line on stderr).
 */
export async function main(argv: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  try {
    return await setUp(argv, env);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`setup:telephony: ${error.message}\n${USAGE}\n`);
      return 2;
    }
    const message =
      error instanceof ConfigError ? error.message : `setup failed: ${(error as Error).message}`;
    process.stderr.write(`setup:telephony: ${message}\n`);
    return error instanceof ConfigError ? 2 : 1;
  }
}

async function setUp(argv: string[], env: NodeJS.ProcessEnv | undefined): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'dry-run': { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const config = loadConfig(env);
  // Name every missing setting at once, LiveKit's and Vobiz's, not one group per run.
  const livekit: [string, string | undefined][] = values['dry-run']
    ? []
    : [
        ['LIVEKIT_URL', config.livekit.url],
        ['LIVEKIT_API_KEY', config.livekit.apiKey],
        ['LIVEKIT_API_SECRET', config.livekit.apiSecret],
      ];
  const t = config.telephony;
  requireVariables(
    [
      ...livekit,
      ['VOBIZ_SIP_DOMAIN', t.sipDomain],
      ['VOBIZ_USERNAME', t.username],
      ['VOBIZ_PASSWORD', t.password],
      ['VOBIZ_OUTBOUND_NUMBER', t.outboundNumber],
    ],
    'set them in .env (see .env.example).',
  );
  const plan = planFromConfig(config);
  if (values['dry-run']) {
    process.stdout.write('Dry run: these requests would be sent (existing objects with the same\n');
    process.stdout.write('names are updated instead of created):\n');
    for (const line of describeRequests(plan)) process.stdout.write(`  ${line}\n`);
    return 0;
  }
  const sip = new SipClient(config.livekit.url!, config.livekit.apiKey!, config.livekit.apiSecret!);
  const result = await provision(sip, plan, { force: values.force }).catch((error: unknown) => {
    throw new Error(describeLiveKitFailure(error, config.livekit.url!));
  });
  const line = (what: string, name: string, r: { id: string; action: string }) =>
    `${what.padEnd(14)} ${name.padEnd(32)} ${r.action.padEnd(9)} ${r.id}`;
  process.stdout.write(
    [
      line('inbound trunk', plan.inbound.name, result.inbound),
      line('outbound trunk', plan.outbound.name, result.outbound),
      line('dispatch rule', plan.dispatch.name, result.dispatch),
      ...nextSteps(config, result),
    ].join('\n') + '\n',
  );
  return 0;
}

if (isEntryPoint(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    () => process.exit(1),
  );
}
