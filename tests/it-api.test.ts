/** Issue 7, the connectors page's API: next scheduled run, recent runs per source, re-queue of a quarantined record. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import type { RunRow } from '../hub/sync.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';
import { goldenOf, rawRecordId } from './helpers/pipeline.js';
import { peopleMapping, writePeopleSource } from './helpers/people-source.js';

let db: TestDatabase;
let dir: string;
let hub: TestHub;
let app: FastifyInstance;
const keys = { read: '', steward: '', admin: '' };
const runs: RunRow[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'hub-it-api-'));
  // Read the American way, the dates of this file do not map.
  await writePeopleSource(dir, ['1,ada@example.com,Ada,10.12.1815', '2,alan@example.com,Alan,23.06.1912', '3,nobody@example.com,Nobody,some day', '4,broken@example.com,Broken'], 'MM/dd/yyyy');
  await writeFile(
    join(dir, 'hub.config.yaml'),
    `sources:
  - name: people
    connector: csv
    schedule: "*/5 * * * *"
    mapping: people.yaml
    config: { path: people.csv, id_column: id }
  - name: missing
    connector: csv
    config: { path: nowhere.csv }
`,
  );
  hub = await startTestHub(db, join(dir, 'hub.config.yaml'));
  runs.push(await syncNow(hub, 'people'), await syncNow(hub, 'people'), await syncNow(hub, 'missing'));
  app = await buildTestApp(hub);
  keys.read = await createApiKey(db.pool, 'reader', ['read']);
  keys.steward = await createApiKey(db.pool, 'steward', ['steward']);
  keys.admin = await createApiKey(db.pool, 'ops', ['admin']);
}, 120_000);

afterAll(async () => {
  await app?.close();
  await hub?.stop();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const get = async (url: string, key = keys.read) => {
  const response = await app.inject({ url, headers: bearer(key) });
  return { status: response.statusCode, body: response.json() };
};
const requeue = async (id: number, key = keys.admin) => {
  const response = await app.inject({ method: 'POST', url: `/v1/quarantine/${id}/requeue`, headers: bearer(key) });
  return { status: response.statusCode, body: response.json() };
};
const openEntries = async () =>
  (await db.pool.query<{ id: string; external_id: string | null; stage: string; reason: string }>('select id, external_id, stage, reason from quarantine where resolved_at is null order by id')).rows;

describe('GET /v1/sources', () => {
  it("answers each source's next scheduled run, and its last run with the error", async () => {
    // The next five-minute tick, computed around the request (it may cross a tick).
    const tick = (at: number) => new Date((Math.floor(at / 300_000) + 1) * 300_000).toISOString();
    const before = tick(Date.now());
    const { status, body } = await get('/v1/sources');
    const after = tick(Date.now());
    expect(status).toBe(200);
    const [people, missing] = body.data;
    expect([before, after]).toContain(people.next_run_at);
    expect(people).toMatchObject({ name: 'people', schedule: '*/5 * * * *', last_run: { id: Number(runs[1].id), status: 'succeeded', error: null } });
    expect(missing).toMatchObject({ name: 'missing', schedule: null, next_run_at: null, last_run: { status: 'failed', error: expect.stringContaining('nowhere.csv') } });
  });
});

describe('GET /v1/sources/{name}/runs', () => {
  it('lists the latest runs of a source, newest first, with their counts and error', async () => {
    const { status, body } = await get('/v1/sources/people/runs');
    expect(status).toBe(200);
    expect(body.data.map((run: { id: number }) => run.id)).toEqual([Number(runs[1].id), Number(runs[0].id)]);
    expect(body.data[1]).toMatchObject({ source: 'people', status: 'succeeded', trigger: 'api', read: 4, quarantined: 4, error: null, started_at: expect.any(String), finished_at: expect.any(String) });
    expect((await get('/v1/sources/people/runs?limit=1')).body.data.map((run: { id: number }) => run.id)).toEqual([Number(runs[1].id)]);
    const failed = await get('/v1/sources/missing/runs');
    expect(failed.body.data).toEqual([expect.objectContaining({ id: Number(runs[2].id), status: 'failed', error: expect.stringContaining('nowhere.csv') })]);
  });

  it('answers 404 for an unknown source and 400 for a bad limit', async () => {
    expect(await get('/v1/sources/nosuch/runs')).toMatchObject({ status: 404, body: { error: { code: 'HUB_ERR_NOT_FOUND', message: "There is no source 'nosuch'." } } });
    expect(await get('/v1/sources/people/runs?limit=101')).toMatchObject({ status: 400, body: { error: { details: { field: 'querystring/limit' } } } });
  });
});

describe('POST /v1/quarantine/{id}/requeue', () => {
  const entryOf = async (externalId: string) => Number((await openEntries()).find((entry) => entry.external_id === externalId)!.id);

  it('is for admins only', async () => {
    const entry = await entryOf('1');
    expect((await requeue(entry, keys.steward)).status).toBe(403);
    expect((await openEntries()).map((open) => open.external_id)).toEqual([null, '1', '2', '3']);
  });

  it('maps the kept record again with the fixed mapping: accepted, resolved, and in a golden record', async () => {
    await writeFile(join(dir, 'people.yaml'), peopleMapping('dd.MM.yyyy'));
    const entry = await entryOf('1');
    expect(await requeue(entry)).toEqual({ status: 200, body: { status: 'accepted' } });
    const golden = await goldenOf(db.pool, 'people', '1');
    const { rows } = await db.pool.query("select data->>'birth_date' as born from golden_record where id = $1", [golden]);
    expect(rows).toEqual([{ born: '1815-12-10' }]);
    const { rows: changes } = await db.pool.query('select cause, cause_id, actor from change_log where golden_id = $1', [golden]);
    expect(changes).toEqual([{ cause: 'api', cause_id: `quarantine:${entry}`, actor: 'key:ops' }]);
    // Only that record: Alan waits for its own re-queue (or a remap).
    expect(await goldenOf(db.pool, 'people', '2')).toBeUndefined();
    const open = await get('/v1/quarantine?open=true');
    expect(open.body.data.map((item: { external_id: string | null }) => item.external_id)).toEqual(['3', '2', null]);
    const resolved = await get('/v1/quarantine?open=false');
    expect(resolved.body.data).toEqual([expect.objectContaining({ id: entry, external_id: '1', resolved_at: expect.any(String) })]);
  });

  it('answers still_quarantined with the reason when the record still does not map', async () => {
    const entry = await entryOf('3');
    const { status, body } = await requeue(entry);
    expect(status).toBe(200);
    expect(body).toEqual({ status: 'still_quarantined', reason: expect.stringMatching(/^born \(person\.birth_date\): .*dd\.MM\.yyyy/) });
    // The entry now carries the reason of today's mapping.
    expect((await openEntries()).find((open) => open.external_id === '3')).toMatchObject({ reason: body.reason });
    expect(await goldenOf(db.pool, 'people', '3')).toBeUndefined();
    expect(await rawRecordId(db.pool, 'people', '3')).toBeGreaterThan(0);
  });

  it('answers 409 for a resolved entry or input that could not be read, and 404 for an unknown id', async () => {
    const { rows } = await db.pool.query<{ id: string }>("select id from quarantine where external_id = '1' and resolved_at is not null");
    expect(await requeue(Number(rows[0].id))).toMatchObject({ status: 409, body: { error: { code: 'HUB_ERR_CONFLICT', message: `Quarantine entry ${rows[0].id} is resolved already.` } } });
    const unreadable = Number((await openEntries()).find((entry) => entry.stage === 'read')!.id);
    expect(await requeue(unreadable)).toMatchObject({ status: 409, body: { error: { message: expect.stringContaining('could not be read') } } });
    expect(await requeue(999_999)).toMatchObject({ status: 404, body: { error: { code: 'HUB_ERR_NOT_FOUND' } } });
  });
});
