/**
 * `npm run stack -- --install`: install what the local stack needs, a line per step.
 *
 *   LiveKit server   GOFLAGS=-mod=mod go install github.com/livekit/livekit-server/cmd/server@v1.13.5
 *                    (later tags carry replace directives that `go install` refuses)
 *   Redis            apt-get install -y redis-server
 *
 * Without Go, it says how to run LiveKit's container image instead.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  LIVEKIT_MODULE,
  LIVEKIT_VERSION,
  findRedisServer,
  findServerBin,
  goPath,
} from './localStack.js';

export const STACK_INSTALL_COMMAND = 'npm run stack -- --install';

export const CONTAINER_HINT =
  `Go is not installed: install Go (https://go.dev/dl/) and run "${STACK_INSTALL_COMMAND}" again, ` +
  `or run LiveKit's image: docker run --rm -p 7880:7880 -p 7881:7881 -p 7882:7882/udp ` +
  `livekit/livekit-server:${LIVEKIT_VERSION} --dev --bind 0.0.0.0`;

async function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  write: (line: string) => void,
): Promise<void> {
  // GOFLAGS and DEBIAN_FRONTEND go on the command line (through env(1)): the rest is inherited.
  const assignments = Object.entries({ ...env, DEBIAN_FRONTEND: 'noninteractive' }).map(
    ([name, value]) => `${name}=${value}`,
  );
  write(`$ ${[...Object.entries(env).map(([n, v]) => `${n}=${v}`), command, ...args].join(' ')}`);
  const child = spawn('env', [...assignments, command, ...args], { stdio: 'inherit' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${command} failed (exit ${code})`);
}

/** Install the missing parts; resolves true when both are there afterwards. */
export async function installStack(
  serverBinSetting: string | undefined,
  write: (line: string) => void,
): Promise<boolean> {
  let ok = true;
  if (await findServerBin(serverBinSetting)) {
    write('LiveKit server: already installed');
  } else if (!(await goPath())) {
    write(CONTAINER_HINT);
    ok = false;
  } else {
    write(`LiveKit server: building ${LIVEKIT_VERSION} with go install (about 3 minutes)`);
    await run(
      'go',
      ['install', `${LIVEKIT_MODULE}@${LIVEKIT_VERSION}`],
      { GOFLAGS: '-mod=mod' },
      write,
    );
    write(`LiveKit server: installed at ${await findServerBin(serverBinSetting)}`);
  }
  if (await findRedisServer()) {
    write('Redis: already installed');
  } else {
    write('Redis: installing redis-server with apt-get');
    await run('apt-get', ['update'], {}, write);
    await run('apt-get', ['install', '-y', 'redis-server'], {}, write);
    write('Redis: installed');
  }
  return ok;
}
