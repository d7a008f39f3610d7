import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type PgBoss from 'pg-boss';
import { createApiKey } from '../hub/auth.js';
import { createPool } from '../hub/db/database.js';
import { freePort } from '../hub/db/embedded.js';
import { startQueue } from '../hub/queue.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp, testHub } from './helpers/app.js';
import { startTestHub, syncNow } from './helpers/hub.js';

describe('readiness, metrics and an absent database', () => {
  let db: TestDatabase;
  let unmigrated: TestDatabase;
  let boss: PgBoss;
  let admin: string;
  let reader: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    unmigrated = await createTestDatabase({ migrate: false });
    boss = await startQueue(db.url, () => undefined);
    admin = await createApiKey(db.pool, 'admin', ['admin']);
    reader = await createApiKey(db.pool, 'reader', ['read']);
  });
  afterAll(async () => {
    await boss.stop({ graceful: false, wait: true });
    await db.drop();
    await unmigrated.drop();
  });

  it('is ready with a database, current migrations and a job queue', async () => {
    const app = await buildTestApp({ ...testHub(db.pool, []), boss });
    const response = await app.inject({ url: '/ready' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', queue: 'ok' } });
    await app.close();
  });

  it('is not ready without its queue, with migrations missing, or without a database', async () => {
    const noQueue = await buildTestApp(testHub(db.pool, []));
    expect((await noQueue.inject({ url: '/ready' })).json()).toEqual({ status: 'not_ready', checks: { database: 'ok', migrations: 'ok', queue: 'failing' } });
    await noQueue.close();

    await unmigrated.pool.query('create table schema_migration (version text primary key)');
    const behind = await buildTestApp({ ...testHub(unmigrated.pool, []), boss });
    const answer = await behind.inject({ url: '/ready' });
    expect(answer.statusCode).toBe(503);
    expect(answer.json().checks).toEqual({ database: 'ok', migrations: 'failing', queue: 'ok' });
    await behind.close();
  });

  it('answers 503, not 500, while the database is away, and /ready says why', async () => {
    // A pool on a port where nothing listens stands for a database that is restarting.
    const away = createPool(`postgres://postgres@127.0.0.1:${await freePort()}/hub`, 2);
    const app = await buildTestApp({ ...testHub(away, []), boss });
    const customers = await app.inject({ url: '/v1/customers', headers: bearer(admin) });
    expect(customers.statusCode).toBe(503);
    expect(customers.headers['retry-after']).toBe('5');
    expect(customers.json().error.code).toBe('HUB_ERR_UNAVAILABLE');
    const ready = await app.inject({ url: '/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.database).toBe('failing');
    await app.close();
    await away.end();
  });

  it('serves Prometheus metrics to admins only, with sync, record and API figures', async () => {
    const hub = await startTestHub(db);
    await syncNow(hub, 'crm-contacts');
    const app = await buildTestApp(hub);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/metrics', headers: bearer(reader) })).statusCode).toBe(403);
    await app.inject({ url: '/v1/customers', headers: bearer(reader) });
    const metrics = await app.inject({ url: '/metrics', headers: bearer(admin) });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.body).toMatch(/hub_sync_runs_total\{source="crm-contacts",status="succeeded"\} [1-9]/);
    expect(metrics.body).toMatch(/hub_records_read_total\{source="crm-contacts"\} (\d+)/);
    expect(metrics.body).toContain('hub_queue_depth');
    expect(metrics.body).toMatch(/hub_http_request_seconds_count\{method="GET",route="\/v1\/customers",status="200"\} [1-9]/);
    await app.close();
    await hub.stop();
  });
});
