/**
 * The live worker, and the only caller of `cli.runApp`.
 *
 *   npm run dev     development worker (debug logs)
 *   npm start       production worker
 *
 * The worker registers with an `agentName`, so calls reach it only by explicit dispatch (the
 * SIP dispatch rule names it); set AGENT_NAME to run several flows on one LiveKit project.
 *
 *   HANDOFF_MODE=dispatch npm start -- --department billing    the billing department's worker
 */
import { fileURLToPath } from 'node:url';
import { ServerOptions, cli, defineAgent } from '@livekit/agents';
import { AgentDispatchClient } from 'livekit-server-sdk';
import type { Department } from '../machines/callMachine.js';
import { DEFAULT_FLOW, departmentsOf } from '../machines/flow.js';
import { ConfigError, loadConfig, requireWorkerCredentials } from './config.js';
import { probeLiveKit } from './livekit/livekitErrors.js';
import { freeTcpPort } from './livekit/freePort.js';
import { redispatchLostCalls } from './livekit/jobWatch.js';
import { createLogger } from './logging.js';
import { workerNameFor } from './livekit/roomHandover.js';
import { callLoadOptions } from './livekit/workerLoad.js';
import { prewarm, runCallJob } from './livekit/worker.js';
import { endChildrenAtExit, exitOnSecondStopSignal } from './livekit/workerExit.js';

export default defineAgent({ prewarm, entry: runCallJob });

const WORKER_COMMANDS = new Set(['start', 'dev', 'connect']);

/**
 * `--department billing` (HANDOFF_MODE=dispatch): run the billing department's worker, under
 * AGENT_NAME-billing, from the same codebase. It is taken out of argv before the LiveKit CLI
 * parses the rest.
 */
function takeDepartment(argv: string[]): Department | undefined {
  const at = argv.indexOf('--department');
  if (at === -1) return undefined;
  const value = argv[at + 1] ?? '';
  argv.splice(at, 2);
  const departments = departmentsOf(DEFAULT_FLOW);
  if (!departments.includes(value)) {
    throw new ConfigError(`--department must be one of ${departments.join(', ')}, not "${value}"`);
  }
  return value;
}

// Job processes import this file too: only the command line starts the worker.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const department = takeDepartment(process.argv);
    const config = loadConfig();
    if (WORKER_COMMANDS.has(process.argv[2] ?? '')) {
      requireWorkerCredentials(config);
      // The SDK's inference and job processes must not outlive the worker (see workerExit.ts).
      endChildrenAtExit();
      exitOnSecondStopSignal();
      // The SDK retries an unreachable server silently: say once what is wrong, and go on.
      void probeLiveKit(config.livekit.url!).then((problem) => {
        if (problem) process.stderr.write(`worker: ${problem}\n`);
      });
      // A job process that dies mid-call: its call is dispatched again and resumes (jobWatch.ts).
      const dispatcher = new AgentDispatchClient(
        config.livekit.url!,
        config.livekit.apiKey!,
        config.livekit.apiSecret!,
      );
      await redispatchLostCalls(
        (job) => dispatcher.createDispatch(job.room, job.agentName, { metadata: job.metadata }),
        createLogger({
          level: config.logLevel ?? 'info',
          pii: config.logPii,
          destination: 'stdout',
        }),
      );
    }
    const agentName = workerNameFor(config.agentName, department ?? 'reception');
    // Credentials from the same Config the jobs use, so the worker and its API calls agree.
    cli.runApp(
      new ServerOptions({
        agent: fileURLToPath(import.meta.url),
        agentName,
        // Load = calls taken, not host CPU: a busy host must not make LiveKit drop dispatches.
        ...callLoadOptions(config.maxConcurrentCalls),
        // SIGTERM: running calls may go on this long; then each ends through its machine.
        drainTimeout: config.drainTimeoutMs,
        // Two workers on one host need two health ports: a department worker takes a free one.
        // (The SDK reads port 0 as "the default", so the free port is chosen here.)
        port: config.healthPort ?? (department ? await freeTcpPort() : 8081),
        ...(config.livekit.url ? { wsURL: config.livekit.url } : {}),
        ...(config.livekit.apiKey ? { apiKey: config.livekit.apiKey } : {}),
        ...(config.livekit.apiSecret ? { apiSecret: config.livekit.apiSecret } : {}),
      }),
    );
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
