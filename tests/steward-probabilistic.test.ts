/** Issue 7 with the probabilistic matcher: the review items it writes are decided through the API, and undone. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { goldenOf, ingest, rawRecordId } from './helpers/pipeline.js';

let db: TestDatabase;
let app: FastifyInstance;
let key = '';

const post = async (url: string, body: unknown) => {
  const response = await app.inject({ method: 'POST', url, headers: bearer(key), payload: body as object });
  return { status: response.statusCode, body: response.json() };
};
const get = async (url: string) => (await app.inject({ method: 'GET', url, headers: bearer(key) })).json();

beforeAll(async () => {
  db = await createTestDatabase();
  const hub: Hub = { pool: db.pool, config: checkConfig({ sources: [], resolution: { matcher: 'probabilistic' } }, 'test.yaml'), log: silentLogger };
  await registerSources(db.pool, hub.config);
  await saveResolutionSettings(db.pool, hub.config.resolution);
  app = await buildTestApp(hub);
  key = await createApiKey(db.pool, 'steward', ['steward']);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('review items of the probabilistic matcher', () => {
  it('merges a pair between the thresholds, keeps it merged through a sync, and undo separates it with the item open again', async () => {
    await ingest(db.pool, 'erp', [{ id: 'z1', given: 'Zofia', family: 'Nowakowska', city: 'Krakow' }]);
    await ingest(db.pool, 'shop', [{ id: 'z2', given: 'Zofia', family: 'Nowakowska' }]);
    const [left, right] = [await rawRecordId(db.pool, 'erp', 'z1'), await rawRecordId(db.pool, 'shop', 'z2')];
    const queue = await get('/v1/review?kind=pair');
    const item = queue.items.find((entry: { id: string; golden_ids: string[] }) => entry.golden_ids.length === 2);
    expect(item).toMatchObject({ kind: 'pair', status: 'open' });
    const detail = await get(`/v1/review/${item.id}`);
    expect(detail.records.map((record: { raw_record_id: number }) => record.raw_record_id)).toEqual([left, right]);
    expect(detail.probability).toBeLessThan(0.9);
    expect(detail.explanation.probability).toBeCloseTo(detail.probability, 6);

    const merged = await post(`/v1/review/${item.id}/decision`, { action: 'merge' });
    expect(merged.status).toBe(200);
    expect(merged.body.customers).toHaveLength(1);
    await ingest(db.pool, 'shop', [{ id: 'z2', given: 'Zofia', family: 'Nowakowska', city: 'Warszawa' }]);
    expect(await goldenOf(db.pool, 'shop', 'z2')).toBe(await goldenOf(db.pool, 'erp', 'z1'));
    expect((await get(`/v1/review/${item.id}`)).status).toBe('linked');

    const undone = await post(`/v1/decisions/${merged.body.decision.id}/undo`, {});
    expect(undone.status).toBe(200);
    expect(undone.body.customers).toHaveLength(2);
    expect(await goldenOf(db.pool, 'shop', 'z2')).not.toBe(await goldenOf(db.pool, 'erp', 'z1'));
    expect((await get(`/v1/review/${item.id}`)).status).toBe('open');

    // Kept apart: a later sync neither joins the pair nor reopens the item.
    const apart = await post(`/v1/review/${item.id}/decision`, { action: 'keep_apart' });
    expect(apart.status).toBe(200);
    await ingest(db.pool, 'erp', [{ id: 'z1', given: 'Zofia', family: 'Nowakowska', city: 'Warszawa' }]);
    expect(await goldenOf(db.pool, 'shop', 'z2')).not.toBe(await goldenOf(db.pool, 'erp', 'z1'));
    expect((await get(`/v1/review/${item.id}`)).status).toBe('rejected');
  });
});
