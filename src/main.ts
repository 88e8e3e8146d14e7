/**
 * The live worker, and the only caller of `cli.runApp`.
 *
 *   npm run dev     development worker (debug logs)
 *   npm start       production worker
 *
 * The worker registers with an `agentName`, so calls reach it only by explicit dispatch (the
 * SIP dispatch rule names it); set AGENT_NAME to run several flows on one LiveKit project.
 */
import { fileURLToPath } from 'node:url';
import { ServerOptions, cli, defineAgent } from '@livekit/agents';
import { ConfigError, loadConfig, requireWorkerCredentials } from './config.js';
import { prewarm, runCallJob } from './worker.js';

export default defineAgent({ prewarm, entry: runCallJob });

const WORKER_COMMANDS = new Set(['start', 'dev', 'connect']);

// Job processes import this file too: only the command line starts the worker.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const config = loadConfig();
    if (WORKER_COMMANDS.has(process.argv[2] ?? '')) requireWorkerCredentials(config);
    cli.runApp(
      new ServerOptions({ agent: fileURLToPath(import.meta.url), agentName: config.agentName }),
    );
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
