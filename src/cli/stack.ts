/**
 * `npm run stack`: a local LiveKit server (dev keys) and Redis on this host, for the worker,
 * `npm run setup:telephony` and the live tests. Prints the LIVEKIT_* values; Ctrl-C stops both.
 *
 *   npm run stack                  start (node IP: LIVEKIT_NODE_IP, else the first non-loopback IPv4)
 *   npm run stack -- --install     install the server (go install) and Redis (apt), a line per step
 *   tsx src/cli/stack.ts --check       exit 1 with one line naming what the live tests lack
 */
import { fileURLToPath } from 'node:url';
import { ConfigError, loadStackConfig } from '../config.js';
import { missingSpeechEngines } from '../speech/engines.js';
import { STACK_INSTALL_COMMAND, installStack } from '../stack/install.js';
import {
  findRedisServer,
  findServerBin,
  firstNonLoopbackIpv4,
  startLocalStack,
} from '../stack/localStack.js';

/** One line naming what the live tests lack and how to install it, or null. */
export async function missingForLiveTests(serverBin: string | undefined): Promise<string | null> {
  if (!(await findServerBin(serverBin))) {
    return `the LiveKit server is not installed: ${STACK_INSTALL_COMMAND}`;
  }
  if (!(await findRedisServer())) return `redis-server is not installed: ${STACK_INSTALL_COMMAND}`;
  return missingSpeechEngines();
}

export async function main(argv: string[]): Promise<number> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const config = loadStackConfig();
  if (argv.includes('--install')) {
    return (await installStack(config.serverBin, say)) ? 0 : 1;
  }
  if (argv.includes('--check')) {
    const missing = await missingForLiveTests(config.serverBin);
    if (missing) say(missing);
    return missing ? 1 : 0;
  }
  const serverBin = await findServerBin(config.serverBin);
  if (!serverBin) {
    say(`LiveKit server not found: run "${STACK_INSTALL_COMMAND}" (or set LIVEKIT_SERVER_BIN).`);
    return 1;
  }
  if (!(await findRedisServer())) {
    say(`redis-server not found: run "${STACK_INSTALL_COMMAND}".`);
    return 1;
  }
  const nodeIp = config.nodeIp ?? firstNonLoopbackIpv4();
  if (!nodeIp) {
    // WebRTC skips loopback candidates: a server advertising 127.0.0.1 accepts no media.
    say('No non-loopback IPv4 address on this host: set LIVEKIT_NODE_IP.');
    return 1;
  }
  say(`starting Redis on 127.0.0.1:${config.redisPort}`);
  say(`starting LiveKit server (${serverBin}, node IP ${nodeIp})`);
  const stack = await startLocalStack({
    serverBin,
    nodeIp,
    livekitPort: config.livekitPort,
    redisPort: config.redisPort,
  });
  say('ready. Put these in .env (or export them):');
  for (const [name, value] of Object.entries(stack.env)) say(`${name}=${value}`);
  say('Ctrl-C stops the server and Redis.');

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('stopping'));
    process.once('SIGTERM', () => resolve('stopping'));
  });
  const outcome = await Promise.race([
    stopped,
    stack.exited.then(({ source, code }) => `${source} exited (code ${code}); stopping`),
  ]);
  say(outcome);
  await stack.stop();
  return outcome === 'stopping' ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
