/**
 * One line for a failed call to LiveKit's server API, naming the variable and the host: "fetch
 * failed" alone tells a user nothing about which setting to check.
 */
export function describeLiveKitFailure(error: unknown, url: string): string {
  const host = hostOf(url);
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (error as { code?: string }).code;
  const status = (error as { status?: number }).status;
  if (
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'ETIMEDOUT'
  ) {
    return `cannot reach LiveKit at ${host} (${code}): check LIVEKIT_URL and that the server is running`;
  }
  if (status === 401 || status === 403) {
    return `LiveKit at ${host} refused the credentials (HTTP ${status}): check LIVEKIT_API_KEY and LIVEKIT_API_SECRET`;
  }
  const detail = (error as Error).message || String(error);
  return `LiveKit at ${host} (LIVEKIT_URL) failed: ${cause?.message ? `${detail}: ${cause.message}` : detail}`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/**
 * Whether LiveKit answers at `url`; one line saying what is wrong when it does not. The worker
 * checks once at start, because the SDK retries an unreachable server without a word.
 */
export async function probeLiveKit(url: string, timeoutMs = 3_000): Promise<string | null> {
  const http = url.replace(/^ws(s?):/, 'http$1:');
  try {
    await fetch(http, { signal: AbortSignal.timeout(timeoutMs) });
    return null;
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'TimeoutError') {
      return `LiveKit at ${hostOf(url)} did not answer within ${timeoutMs} ms: check LIVEKIT_URL`;
    }
    return describeLiveKitFailure(error, url);
  }
}
