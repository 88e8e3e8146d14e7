/**
 * `npm run console` as a child process, isolated from a developer's .env (empty values count as
 * unset): what the console tests and the voice console tests run.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');

export interface ConsoleRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runConsole(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<ConsoleRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src', 'cli', 'console.ts'), ...args],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          OPENAI_API_KEY: '',
          OPENAI_BASE_URL: '',
          LOG_LEVEL: 'error',
          ...env,
        },
        timeout: 120_000,
        maxBuffer: 10_000_000,
      },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin ?? '');
  });
}
