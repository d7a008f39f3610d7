/** Issue 6, change feed: customer payloads, retention and 410 for an expired cursor; API keys from the CLI's functions. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey, createApiKeyWithId, hashApiKey, parseScopes, revokeApiKey } from '../hub/auth.js';
import { pruneChangeLog } from '../hub/change-feed.js';
import { createSubscription } from '../hub/webhooks.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp, seedChange, seedGolden, testHub } from './helpers/app.js';

let db: TestDatabase;
let app: FastifyInstance;
let key = '';
const ids = { active: '', merged: '', positions: [] as number[] };

beforeAll(async () => {
  db = await createTestDatabase();
  app = await buildTestApp(testHub(db.pool, []));
  key = await createApiKey(db.pool, 'reader', ['read']);
  ids.active = await seedGolden(db.pool, { data: { given_name: 'Ada', emails: ['ada@example.com'] } });
  ids.merged = await seedGolden(db.pool, { status: 'merged', mergedInto: ids.active });
  for (const [goldenId, kind] of [
    [ids.active, 'created'],
    [ids.merged, 'created'],
    [ids.merged, 'merged'],
    [ids.active, 'updated'],
    [ids.active, 'updated'],
    [ids.active, 'updated'],
  ]) {
    ids.positions.push(await seedChange(db.pool, { goldenId, kind, detail: kind === 'merged' ? { into: ids.active } : {} }));
  }
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

async function get(url: string) {
  const response = await app.inject({ method: 'GET', url, headers: bearer(key) });
  return { status: response.statusCode, body: response.json() };
}

describe('GET /v1/changes', () => {
  it('carries the customer as the API shows it while it is active, null once merged away', async () => {
    const { body } = await get('/v1/changes?limit=3');
    expect(body.data[0].customer).toEqual({ id: ids.active, attributes: { given_name: 'Ada', emails: ['ada@example.com'] }, created_at: expect.any(String), updated_at: expect.any(String) });
    expect(body.data[1]).toMatchObject({ golden_id: ids.merged, kind: 'created', customer: null });
    expect(body.data[2]).toMatchObject({ golden_id: ids.merged, kind: 'merged', detail: { into: ids.active }, customer: null });
  });

  it('keeps changes for the retention, then answers 410 with the oldest valid cursor', async () => {
    const [p1, p2, p3, p4] = ids.positions;
    // The first three are older than the retention; the fourth is not, so the fifth stays too whatever its age.
    await db.pool.query("update change_log set created_at = now() - interval '40 days' where position = any($1::bigint[])", [[p1, p2, p3, ids.positions[4]]]);
    expect(await pruneChangeLog(db.pool, 30)).toEqual({ prunedThrough: p3, deleted: 3 });
    expect(await pruneChangeLog(db.pool, 30)).toEqual({ prunedThrough: p3, deleted: 0 });

    for (const after of [0, p1, p2]) {
      const { status, body } = await get(`/v1/changes?after=${after}`);
      expect(status).toBe(410);
      expect(body.error).toEqual({
        code: 'HUB_ERR_CURSOR_EXPIRED',
        message: `Changes up to position ${p3} are no longer kept (30 days of retention): re-export the customers, then continue with after=${p3}.`,
        details: { oldest_after: p3 },
      });
    }
    const { status, body } = await get(`/v1/changes?after=${p3}`);
    expect(status).toBe(200);
    expect(body.data.map((change: { position: number }) => change.position)).toEqual([p4, ids.positions[4], ids.positions[5]]);
  });

  it('keeps what an active webhook subscription has yet to deliver', async () => {
    const { id } = await createSubscription(db.pool, { url: 'http://127.0.0.1:9/never', events: ['customer.updated'], description: null, createdBy: 'test' });
    await db.pool.query('update webhook_subscription set change_cursor = $2 where id = $1', [id, ids.positions[3]]);
    await db.pool.query("update change_log set created_at = now() - interval '40 days'");
    expect(await pruneChangeLog(db.pool, 30)).toEqual({ prunedThrough: ids.positions[3], deleted: 1 });
    await db.pool.query("update webhook_subscription set status = 'paused' where id = $1", [id]);
    expect(await pruneChangeLog(db.pool, 30)).toEqual({ prunedThrough: ids.positions[5], deleted: 2 });
    expect((await get(`/v1/changes?after=${ids.positions[5]}`)).body).toEqual({ data: [], next_after: ids.positions[5] });
  });

  it('documents the retention and the 410', async () => {
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const operation = document.paths['/v1/changes'].get;
    expect(operation.description).toContain('30 days');
    expect(operation.responses['410']).toMatchObject({ content: { 'application/json': { schema: { $ref: '#/components/schemas/HubError' } } } });
  });
});

describe('API keys (hub keys create | revoke)', () => {
  it('creates a key with scopes, stored hashed, and revokes it by id or by name', async () => {
    const created = await createApiKeyWithId(db.pool, 'etl', parseScopes('read, steward'));
    const { rows } = await db.pool.query('select name, scopes, key_hash from api_key where id = $1', [created.id]);
    expect(rows).toEqual([{ name: 'etl', scopes: ['read', 'steward'], key_hash: hashApiKey(created.key) }]);
    expect((await app.inject({ method: 'GET', url: '/v1/changes?after=999', headers: bearer(created.key) })).statusCode).toBe(200);

    expect(await revokeApiKey(db.pool, 'etl')).toEqual({ id: created.id, name: 'etl' });
    expect((await app.inject({ method: 'GET', url: '/v1/changes?after=999', headers: bearer(created.key) })).statusCode).toBe(401);
    await expect(revokeApiKey(db.pool, 'etl')).rejects.toThrow("There is no unrevoked API key with id or name 'etl'.");

    const second = await createApiKeyWithId(db.pool, 'etl', ['admin']);
    expect(await revokeApiKey(db.pool, second.id)).toEqual({ id: second.id, name: 'etl' });
  });

  it('refuses to revoke by a name several keys share, and bad scopes or names', async () => {
    const a = await createApiKeyWithId(db.pool, 'twin', ['read']);
    const b = await createApiKeyWithId(db.pool, 'twin', ['read']);
    await expect(revokeApiKey(db.pool, 'twin')).rejects.toThrow(`Several API keys are named 'twin' (ids ${a.id}, ${b.id}); revoke one by id.`);
    await expect(createApiKeyWithId(db.pool, 'x', parseScopes('read,root'))).rejects.toThrow('Scopes must be some of read, steward, admin');
    await expect(createApiKeyWithId(db.pool, '42', ['read'])).rejects.toThrow('not a number');
  });
});
