import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { executeRun, requestSync, RunInterrupted } from '../hub/sync.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';
import { golden, goldenOf } from './helpers/pipeline.js';

describe('records deleted at the source', () => {
  let db: TestDatabase;
  let dir: string;
  let hub: TestHub;
  const writeRows = (ids: number[]) => writeFile(join(dir, 'people.csv'), ['id,email', ...ids.map((id) => `${id},p${id}@example.com`)].join('\n') + '\n');
  const deleted = async () => (await db.pool.query("select external_id from raw_record where deleted_at is not null order by external_id")).rows.map((row) => row.external_id);

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'hub-deletions-'));
    await writeFile(join(dir, 'people.yaml'), 'streams:\n  rows:\n    fields:\n      - { target: person.email, from: email, transforms: [email] }\n');
    const config = checkConfig({ sources: [{ name: 'people', connector: 'csv', mapping: 'people.yaml', config: { path: 'people.csv', id_column: 'id', page_size: 1 } }] }, join(dir, 'hub.config.yaml'));
    hub = await startTestHub(db, undefined, config);
  });
  afterAll(async () => {
    await hub.stop();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('are not deleted by a run that stops before its sweep ends, and are when the resumed sweep ends', async () => {
    await writeRows([1, 2, 3]);
    expect(await syncNow(hub, 'people')).toMatchObject({ status: 'succeeded', created: 3 });
    const three = (await goldenOf(db.pool, 'people', '3'))!;

    await writeRows([1, 2]);
    // The hub shuts down after the first page: the sweep has not ended, so nothing may be deleted.
    const { runId } = await requestSync(hub, 'people', 'api');
    const stop = new AbortController();
    stop.abort();
    await expect(executeRun(hub, runId, stop.signal)).rejects.toBeInstanceOf(RunInterrupted);
    expect(await deleted()).toEqual([]);
    expect(await goldenOf(db.pool, 'people', '3')).toBe(three);

    // The run resumes from its checkpoint; the sweep it began ends now and finds record 3 gone.
    const resumed = await executeRun(hub, runId);
    expect(resumed).toMatchObject({ status: 'succeeded', deleted: 1 });
    expect(await deleted()).toEqual(['3']);
    expect(await goldenOf(db.pool, 'people', '3')).toBeUndefined();
    expect((await golden(db.pool, three)).status).toBe('retired');
    // Kept as received.
    const { rows } = await db.pool.query("select data from raw_record where external_id = '3'");
    expect(rows[0].data).toEqual({ id: '3', email: 'p3@example.com' });
  });

  it('come back when a later sweep finds them again', async () => {
    await writeRows([1, 2, 3]);
    expect(await syncNow(hub, 'people')).toMatchObject({ status: 'succeeded', updated: 1, unchanged: 2, deleted: 0 });
    expect(await deleted()).toEqual([]);
    expect(await goldenOf(db.pool, 'people', '3')).toBeDefined();
  });
});
