import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../hub/auth.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow } from './helpers/hub.js';
import { bearer, buildTestApp, testHub } from './helpers/app.js';

/** The major version of a PostgreSQL client tool, or 0 when it is not installed. */
function clientMajor(tool: string): number {
  try {
    return Number(execFileSync(tool, ['--version'], { encoding: 'utf8' }).match(/(\d+)\.\d+/)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

describe('backup and restore with pg_dump', () => {
  let source: TestDatabase;
  let restored: TestDatabase;
  let dir: string;
  let serverMajor = 0;
  beforeAll(async () => {
    source = await createTestDatabase();
    restored = await createTestDatabase({ migrate: false });
    dir = await mkdtemp(join(tmpdir(), 'hub-backup-'));
    serverMajor = Math.floor(Number((await source.pool.query('show server_version_num')).rows[0].server_version_num) / 10000);
  });
  afterAll(async () => {
    await source.drop();
    await restored.drop();
    await rm(dir, { recursive: true, force: true });
  });

  // pg_dump refuses a server newer than itself: this machine's client is 15, the embedded server 17.
  it('restores a dump into a fresh database that serves the same golden records', async (context) => {
    if (clientMajor('pg_dump') < serverMajor) context.skip(`pg_dump ${clientMajor('pg_dump')} cannot dump PostgreSQL ${serverMajor}; runs against DATABASE_URL's server`);
    const hub = await startTestHub(source);
    for (const name of ['crm-contacts', 'tradeshow-2025', 'shop-orders']) await syncNow(hub, name);
    await hub.stop();
    const key = await createApiKey(source.pool, 'backup test', ['read']);

    const dump = join(dir, 'hub.dump');
    execFileSync('pg_dump', ['--format=custom', '--no-owner', `--file=${dump}`, source.url]);
    execFileSync('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${restored.url}`, dump]);

    const served = async (url: string, pool: TestDatabase['pool']) => {
      const app = await buildTestApp(testHub(pool, []));
      try {
        const list = await app.inject({ url, headers: bearer(key) });
        expect(list.statusCode).toBe(200);
        return list.json();
      } finally {
        await app.close();
      }
    };
    const before = await served('/v1/customers?limit=500', source.pool);
    expect(before.data).toHaveLength(160);
    expect(await served('/v1/customers?limit=500', restored.pool)).toEqual(before);
    const someone = before.data[0].id;
    // Customer value is computed when read: only its timestamp may differ.
    const detail = async (pool: TestDatabase['pool']) => {
      const customer = await served(`/v1/customers/${someone}`, pool);
      return { ...customer, value: { ...customer.value, computed_at: undefined } };
    };
    expect(await detail(restored.pool)).toEqual(await detail(source.pool));
  }, 60_000);
});
