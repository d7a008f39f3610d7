import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { createApiKey } from '../hub/auth.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';
import { buildTestApp, bearer } from './helpers/app.js';
import { changesAfter, goldenOf, lastPosition } from './helpers/pipeline.js';

const header = 'id,email,phone,name';

describe('a CSV source that changes between syncs, seen through the API', () => {
  let db: TestDatabase;
  let dir: string;
  let hub: TestHub;
  let app: FastifyInstance;
  let key: string;
  const writeRows = (rows: string[]) => writeFile(join(dir, 'contacts.csv'), [header, ...rows].join('\n') + '\n');

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'hub-changes-'));
    const mappingPath = join(dir, 'contacts.yaml');
    await writeFile(
      mappingPath,
      `streams:\n  rows:\n    fields:\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.phone, from: phone, transforms: [phone] }\n      - { target: person.full_name, from: name, transforms: [normalise_text] }\n`,
    );
    // The deterministic matcher: a row holding one customer's email and another's phone joins them (the merge case below).
    const config = checkConfig(
      { resolution: { matcher: 'deterministic' }, sources: [{ name: 'contacts', connector: 'csv', default_region: 'GB', mapping: 'contacts.yaml', config: { path: 'contacts.csv', id_column: 'id' } }] },
      join(dir, 'hub.config.yaml'),
    );
    hub = await startTestHub(db, undefined, config);
    app = await buildTestApp(hub);
    key = await createApiKey(db.pool, 'test', ['read']);
  });
  afterAll(async () => {
    await app.close();
    await hub.stop();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a second sync of the same file as unchanged and writes no change', async () => {
    await writeRows(['1,jo@example.com,020 7946 0001,Jo Bloggs', '2,sam@example.com,020 7946 0002,Sam Smith']);
    expect(await syncNow(hub, 'contacts')).toMatchObject({ status: 'succeeded', created: 2 });
    const before = await lastPosition(db.pool);
    expect(await syncNow(hub, 'contacts')).toMatchObject({ status: 'succeeded', read: 2, created: 0, updated: 0, unchanged: 2 });
    expect(await changesAfter(db.pool, before)).toEqual([]);
  });

  it('updates the golden record of a changed row, with one change-log entry', async () => {
    const jo = (await goldenOf(db.pool, 'contacts', '1'))!;
    const before = await lastPosition(db.pool);
    await writeRows(['1,jo@example.com,020 7946 0001,Joanna Bloggs', '2,sam@example.com,020 7946 0002,Sam Smith']);
    expect(await syncNow(hub, 'contacts')).toMatchObject({ status: 'succeeded', updated: 1, unchanged: 1 });
    expect(await changesAfter(db.pool, before)).toEqual([expect.objectContaining({ golden_id: jo, kind: 'updated', changed: ['full_name'] })]);
    const response = await app.inject({ url: `/v1/customers/${jo}`, headers: bearer(key) });
    expect(response.json().attributes).toMatchObject({ full_name: 'Joanna Bloggs', email: 'jo@example.com', phone: '+442079460001' });
  });

  it('merges two golden records when a new row links them; the merged-away id answers 308', async () => {
    const [jo, sam] = [(await goldenOf(db.pool, 'contacts', '1'))!, (await goldenOf(db.pool, 'contacts', '2'))!];
    await writeRows(['1,jo@example.com,020 7946 0001,Joanna Bloggs', '2,sam@example.com,020 7946 0002,Sam Smith', '3,sam@example.com,020 7946 0001,Sam & Jo']);
    expect(await syncNow(hub, 'contacts')).toMatchObject({ status: 'succeeded', created: 1, unchanged: 2 });
    // The older golden record (smaller sequence number) survives.
    const survivor = Number(jo.slice(4)) < Number(sam.slice(4)) ? jo : sam;
    const mergedAway = survivor === jo ? sam : jo;
    const moved = await app.inject({ url: `/v1/customers/${mergedAway}`, headers: bearer(key) });
    expect(moved.statusCode).toBe(308);
    expect(moved.headers.location).toBe(`/v1/customers/${survivor}`);
    const merged = (await app.inject({ url: `/v1/customers/${survivor}`, headers: bearer(key) })).json();
    expect(merged.source_records.map((record: { external_id: string }) => record.external_id).sort()).toEqual(['1', '2', '3']);
  });
});
