/**
 * Test helpers that stand in for nothing: unhandled rejections, a free port, a command-line
 * entry point's `main(argv, env)` run in process.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { vi } from 'vitest';

/** Collect unhandled rejections for the duration of a test file. */
export function trackUnhandledRejections(): { errors: unknown[]; stop: () => void } {
  const errors: unknown[] = [];
  const onRejection = (reason: unknown) => errors.push(reason);
  process.on('unhandledRejection', onRejection);
  return { errors, stop: () => process.off('unhandledRejection', onRejection) };
}

/** A port with nothing listening on it. */
export async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** What a command printed and the exit code it would have had. */
export interface CommandRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A command-line entry point (`src/cli/*`) run in this process through its `main(argv, env)`,
 * with what it writes to process.stdout and process.stderr captured: the same code as the
 * command, without a Node start and a tsx load. `env` is the whole environment it sees (no .env).
 * A logger writing to a file descriptor directly is not captured. Runs must not overlap.
 */
export async function runMain(
  main: (argv: string[], env?: NodeJS.ProcessEnv) => Promise<number>,
  argv: string[],
  env: Record<string, string>,
): Promise<CommandRun> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const capture =
    (into: string[]) =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const done = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      done?.();
      return true;
    };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture(stdout) as never);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture(stderr) as never);
  let code: number;
  try {
    code = await main(argv, env);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return { code, stdout: stdout.join(''), stderr: stderr.join('') };
}
