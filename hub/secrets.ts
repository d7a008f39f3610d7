/**
 * Secrets at rest (webhook signing secrets): AES-256-GCM, stored as `enc:v1:<iv>:<tag>:<ciphertext>` (base64url).
 *
 * The key: HUB_ENCRYPTION_KEY (32 bytes, as 64 hex digits or base64). Without it, a hub on the embedded database
 * generates a key once and keeps it in `<HUB_DIR>/encryption-key` (mode 0600), beside the database files but never in
 * the database; a hub on DATABASE_URL requires HUB_ENCRYPTION_KEY and refuses to create webhooks without it (503).
 * Values stored before encryption (no `enc:` prefix) are read as they are.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HubError } from './errors.js';

const PREFIX = 'enc:v1:';

export function parseEncryptionKey(value: string): Buffer {
  const trimmed = value.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) throw new Error('HUB_ENCRYPTION_KEY must be 32 bytes, as 64 hex digits or base64 (e.g. `openssl rand -hex 32`).');
  return key;
}

let cached: { source: string; key: Buffer } | undefined;

/** The key, from the environment or (embedded database only) the key file; throws a 503 HubError when there is none. */
export function encryptionKey(env: NodeJS.ProcessEnv = process.env): Buffer {
  const fromEnv = env.HUB_ENCRYPTION_KEY;
  const source = fromEnv ? `env:${fromEnv}` : env.DATABASE_URL ? 'none' : `file:${env.HUB_DIR ?? '.hub'}`;
  if (cached?.source === source) return cached.key;
  let key: Buffer;
  if (fromEnv) key = parseEncryptionKey(fromEnv);
  else if (env.DATABASE_URL) {
    throw new HubError('HUB_ERR_UNAVAILABLE', { reason: 'Secrets cannot be stored: set HUB_ENCRYPTION_KEY (32 bytes, e.g. `openssl rand -hex 32`) for a hub on DATABASE_URL.' });
  } else {
    const dir = env.HUB_DIR ?? '.hub';
    const file = join(dir, 'encryption-key');
    try {
      key = parseEncryptionKey(readFileSync(file, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      mkdirSync(dir, { recursive: true });
      // `wx`: two processes starting together do not overwrite each other's key.
      try {
        writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
      } catch (raced) {
        if ((raced as NodeJS.ErrnoException).code !== 'EEXIST') throw raced;
      }
      key = parseEncryptionKey(readFileSync(file, 'utf8'));
    }
  }
  cached = { source, key };
  return key;
}

export function sealSecret(plain: string, key = encryptionKey()): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `${PREFIX}${iv.toString('base64url')}:${cipher.getAuthTag().toString('base64url')}:${data.toString('base64url')}`;
}

export function openSecret(stored: string, key?: Buffer): string {
  if (!stored.startsWith(PREFIX)) return stored;
  const [iv, tag, data] = stored.slice(PREFIX.length).split(':').map((part) => Buffer.from(part, 'base64url'));
  const decipher = createDecipheriv('aes-256-gcm', key ?? encryptionKey(), iv);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8');
}
