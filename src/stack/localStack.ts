/**
 * A local LiveKit server (dev keys) and Redis, started as child processes and stopped together.
 * `npm run stack` (src/cli/stack.ts) and the live tests (test/live/) both use it.
 *
 *   const stack = await startLocalStack({ serverBin, nodeIp, livekitPort, redisPort });
 *   stack.env        LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET for workers and tools
 *   await stack.stop()
 *
 * Each process is ready when it answers: Redis a PING, the server its HTTP health check. WebRTC
 * needs `nodeIp` to be an address other than loopback (libwebrtc skips loopback candidates).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, constants } from 'node:fs/promises';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** `server --dev` accepts these keys. */
export const DEV_API_KEY = 'devkey';
export const DEV_API_SECRET = 'secret';
export const LIVEKIT_VERSION = 'v1.13.5';
export const LIVEKIT_MODULE = 'github.com/livekit/livekit-server/cmd/server';

export interface LocalStackOptions {
  serverBin: string;
  nodeIp: string;
  livekitPort: number;
  redisPort: number;
  /** How long each process may take to answer. Default 20 s. */
  readyTimeoutMs?: number;
  /** Where the processes' output goes (default: discarded). */
  output?: (source: 'livekit' | 'redis', chunk: Buffer) => void;
}

export interface LocalStack {
  url: string;
  apiKey: string;
  apiSecret: string;
  redisAddress: string;
  nodeIp: string;
  env: { LIVEKIT_URL: string; LIVEKIT_API_KEY: string; LIVEKIT_API_SECRET: string };
  /** Resolves if either process exits before stop(): the stack is broken. */
  exited: Promise<{ source: 'livekit' | 'redis'; code: number | null }>;
  stop(): Promise<void>;
}

/** The host's first non-loopback IPv4 address, or undefined when it has none. */
export function firstNonLoopbackIpv4(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return undefined;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `go env GOPATH`, or undefined without Go. */
export async function goPath(): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)('go', ['env', 'GOPATH']);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function onPath(name: string): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)('sh', ['-c', 'command -v "$0"', name]);
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Where the LiveKit server is: the setting, then `go install`'s output, then PATH. */
export async function findServerBin(setting: string | undefined): Promise<string | undefined> {
  if (setting) return (await isExecutable(setting)) ? setting : undefined;
  const gopath = await goPath();
  if (gopath && (await isExecutable(join(gopath, 'bin', 'server')))) {
    return join(gopath, 'bin', 'server');
  }
  return onPath('livekit-server');
}

export async function findRedisServer(): Promise<string | undefined> {
  return onPath('redis-server');
}

/** Call `probe` until it resolves true, within `timeoutMs`; a process exit ends the wait. */
async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  exited: Promise<unknown>,
): Promise<void> {
  let failed: Error | undefined;
  const exit = exited.then(() => {
    failed = new Error(`${what} exited before it was ready`);
  });
  const deadline = Date.now() + timeoutMs;
  while (!failed) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready within ${timeoutMs} ms`);
    // Poll again after a short pause, or at once when the process exits.
    await Promise.race([new Promise((r) => setTimeout(r, 100)), exit]);
  }
  throw failed;
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return once(child, 'exit').then(([code]) => code as number | null);
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = exitOf(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const timeoutMs = options.readyTimeoutMs ?? 20_000;
  const redisAddress = `127.0.0.1:${options.redisPort}`;
  const children: ChildProcess[] = [];
  const stop = async () => {
    // The server first (it still talks to Redis while it shuts down), then Redis.
    for (const child of children.reverse()) await stopChild(child, 5_000);
  };
  const pipe = (source: 'livekit' | 'redis', child: ChildProcess) => {
    const sink = (chunk: Buffer) => options.output?.(source, chunk);
    child.stdout?.on('data', sink);
    child.stderr?.on('data', sink);
  };
  try {
    const redisBin = await findRedisServer();
    if (!redisBin) throw new Error('redis-server not found: apt-get install -y redis-server');
    const redis = spawn(
      redisBin,
      [
        '--bind',
        '127.0.0.1',
        '--port',
        String(options.redisPort),
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(redis);
    pipe('redis', redis);
    const redisExit = exitOf(redis);
    await waitUntil('redis-server', () => redisPing(options.redisPort), timeoutMs, redisExit);

    const server = spawn(
      options.serverBin,
      [
        '--dev',
        '--bind',
        '127.0.0.1',
        '--node-ip',
        options.nodeIp,
        '--redis-host',
        redisAddress,
        '--config-body',
        `port: ${options.livekitPort}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(server);
    pipe('livekit', server);
    const serverExit = exitOf(server);
    const base = `http://127.0.0.1:${options.livekitPort}`;
    await waitUntil('livekit-server', () => httpOk(base), timeoutMs, serverExit);

    const url = `ws://127.0.0.1:${options.livekitPort}`;
    return {
      url,
      apiKey: DEV_API_KEY,
      apiSecret: DEV_API_SECRET,
      redisAddress,
      nodeIp: options.nodeIp,
      env: { LIVEKIT_URL: url, LIVEKIT_API_KEY: DEV_API_KEY, LIVEKIT_API_SECRET: DEV_API_SECRET },
      exited: Promise.race([
        redisExit.then((code) => ({ source: 'redis' as const, code })),
        serverExit.then((code) => ({ source: 'livekit' as const, code })),
      ]),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
