/**
 * `npm run inspector`: the local viewer of live and recent calls, as statecharts.
 *
 *   npm run inspector                 http://127.0.0.1:4747 (INSPECT_HOST, INSPECT_PORT)
 *   npm run console -- --inspect      in another terminal: a call to watch
 *   npm run dev                       live calls (INSPECT=local is the dev default)
 *
 * Calls stay listed (the last 200) after their process exits, until this server stops.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { startInspectorServer } from '../inspection/server.js';

export { startInspectorServer } from '../inspection/server.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

const USAGE = `Usage: npm run inspector
  Serves the call inspector at http://INSPECT_HOST:INSPECT_PORT (127.0.0.1:4747 by default).
  Calls connect to it with: npm run console -- --inspect, or npm run dev.
  INSPECT_PII=1 shows phone numbers and caller text (set it for the calls too).`;

/** A bad flag: printed as one line with the usage, exit code 2 (as the console does). */
class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  let help: boolean | undefined;
  try {
    ({
      values: { help },
    } = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' } } }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { inspect } = loadConfig();
  const server = await startInspectorServer({
    port: inspect.port,
    host: inspect.host,
    pii: inspect.pii,
  });
  const lines = [
    `Call inspector: ${server.url}`,
    `  Stately's hosted inspector (loads https://stately.ai in your browser): ${server.url}stately`,
    '  Send it calls: npm run console -- --inspect, or npm run dev. Ctrl-C stops.',
    inspect.pii
      ? '  INSPECT_PII is on: phone numbers and caller text are shown when calls send them.'
      : '  Phone numbers are masked and caller text is hidden (INSPECT_PII=1 shows them).',
  ];
  if (!LOOPBACK.has(inspect.host)) {
    lines.push(`  Listening on ${inspect.host}: anyone who can reach it can watch the calls.`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`inspector: ${message}\n`);
    if (error instanceof UsageError) process.stderr.write(`${USAGE}\n`);
    process.exit(error instanceof ConfigError || error instanceof UsageError ? 2 : 1);
  });
}
