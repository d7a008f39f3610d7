/** Webhook secrets are encrypted at rest (AES-256-GCM) with HUB_ENCRYPTION_KEY, or the embedded hub's key file. */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import { encryptionKey, openSecret, sealSecret } from '../hub/secrets.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp } from './helpers/app.js';

const KEY = 'a'.repeat(64);
let db: TestDatabase;
let app: FastifyInstance;
let admin: string;

beforeAll(async () => {
  process.env.HUB_ENCRYPTION_KEY = KEY;
  db = await createTestDatabase();
  app = await buildTestApp({ pool: db.pool, config: checkConfig({ sources: [] }, 'test.yaml'), log: silentLogger });
  admin = await createApiKey(db.pool, 'admin', ['admin']);
});

afterAll(async () => {
  delete process.env.HUB_ENCRYPTION_KEY;
  await app?.close();
  await db?.drop();
});

describe('webhook secrets at rest', () => {
  it('stores the secret encrypted, and only the API answer shows it', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: bearer(admin), payload: { url: 'http://127.0.0.1:9/hook', events: ['customer.created'] } });
    expect(response.statusCode).toBe(201);
    const { secret } = response.json();
    const { rows } = await db.pool.query<{ secret: string }>('select secret from webhook_subscription');
    expect(rows[0].secret).toMatch(/^enc:v1:[\w-]+:[\w-]+:[\w-]+$/);
    expect(rows[0].secret).not.toContain(secret);
    expect(openSecret(rows[0].secret)).toBe(secret);
    expect(() => openSecret(rows[0].secret, Buffer.alloc(32, 1))).toThrow();
  });

  it('reads secrets stored before encryption as they are', () => {
    expect(openSecret('whsec_plain')).toBe('whsec_plain');
  });

  it('refuses without HUB_ENCRYPTION_KEY on DATABASE_URL (503), and keeps a generated key in HUB_DIR on the embedded database', async () => {
    expect(() => encryptionKey({ DATABASE_URL: 'postgres://x/y' })).toThrow(expect.objectContaining({ code: 'HUB_ERR_UNAVAILABLE', statusCode: 503 }));
    const dir = await mkdtemp(join(tmpdir(), 'hub-key-'));
    try {
      const key = encryptionKey({ HUB_DIR: dir });
      expect(key).toHaveLength(32);
      expect((await stat(join(dir, 'encryption-key'))).mode & 0o777).toBe(0o600);
      expect((await readFile(join(dir, 'encryption-key'), 'utf8')).trim()).toBe(key.toString('hex'));
      expect(openSecret(sealSecret('s3cret', key), key)).toBe('s3cret');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
