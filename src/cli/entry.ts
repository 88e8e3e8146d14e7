/**
 * Command-line entry points export `main(argv, env)` and run only when executed, never when
 * imported (tests and other modules import them freely).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** True when the module at `url` is the script Node was started with. */
export function isEntryPoint(url: string): boolean {
  const script = process.argv[1];
  return script !== undefined && resolve(script) === fileURLToPath(url);
}
