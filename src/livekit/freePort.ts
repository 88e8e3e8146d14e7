import { once } from 'node:events';
import { createServer } from 'node:net';

/** A TCP port nothing listens on right now (the OS picks it). */
export async function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  const probe = createServer().listen(0, host);
  await once(probe, 'listening');
  const address = probe.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
