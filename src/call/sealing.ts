/**
 * The snapshot kept in room metadata for crash recovery holds the caller's number and words, and
 * every participant of the room (and LiveKit's webhooks) can read room metadata. So it is sealed:
 * AES-256-GCM (authenticated: a changed or foreign snapshot fails to open), with a key from
 * SNAPSHOT_KEY, or by default one derived from LIVEKIT_API_SECRET, which every worker of the
 * project already has and no room participant does.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export interface SnapshotSealer {
  seal(plain: string): string;
  /** The plain text, or null when it cannot be opened (another key, tampered, not sealed). */
  open(sealed: string): string | null;
}

const PREFIX = 'sealed:v1:';
/** Binds the ciphertext to its purpose: a sealed snapshot is not valid as anything else. */
const AAD = Buffer.from('vobiz-call-snapshot:v1');

/** A 256-bit key from any secret (HKDF-SHA256). */
export function deriveSnapshotKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'vobiz-call-snapshot', 'aes-256-gcm key', 32));
}

export function snapshotSealer(key: Buffer): SnapshotSealer {
  if (key.length !== 32) throw new Error('a snapshot key is 32 bytes');
  const b64 = (buffer: Buffer) => buffer.toString('base64url');
  return {
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(AAD);
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return `${PREFIX}${b64(iv)}:${b64(body)}:${b64(cipher.getAuthTag())}`;
    },
    open(sealed) {
      if (!sealed.startsWith(PREFIX)) return null;
      const [iv, body, tag] = sealed.slice(PREFIX.length).split(':');
      if (!iv || body === undefined || !tag) return null;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
          .setAAD(AAD)
          .setAuthTag(Buffer.from(tag, 'base64url'));
        const plain = Buffer.concat([
          decipher.update(Buffer.from(body, 'base64url')),
          decipher.final(),
        ]);
        return plain.toString('utf8');
      } catch {
        return null;
      }
    },
  };
}
