import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nock from 'nock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeOdoo, microsecondsOf, type StoredRecord } from '../connectors/odoo/fake-server.js';
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

/**
 * A hub on a database of its own, set up before the tests of the describe block that calls it, with one source whose
 * mapping takes the person's email from `email` of `stream`; third-party HTTP goes to nock only.
 */
function hubWithSource(source: { name: string; connector: string; config: Record<string, unknown> }, stream: string) {
  const setup = {} as { db: TestDatabase; hub: TestHub; dir: string };
  beforeAll(async () => {
    setup.db = await createTestDatabase();
    setup.dir = await mkdtemp(join(tmpdir(), `hub-deletions-${source.connector}-`));
    await writeFile(join(setup.dir, 'mapping.yaml'), `streams:\n  ${stream}:\n    fields:\n      - { target: person.email, from: email, transforms: [email] }\n`);
    const config = checkConfig({ sources: [{ ...source, mapping: 'mapping.yaml' }] }, join(setup.dir, 'hub.config.yaml'));
    setup.hub = await startTestHub(setup.db, undefined, config);
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
  });
  afterAll(async () => {
    nock.cleanAll();
    nock.enableNetConnect();
    await setup.hub.stop();
    await setup.db.drop();
    await rm(setup.dir, { recursive: true, force: true });
  });
  return setup;
}

describe('records deleted in a source whose reads never show deletions (Odoo)', () => {
  const odoo = 'https://acme.odoo.com';
  const setup = hubWithSource({ name: 'erp', connector: 'odoo', config: { url: odoo, database: 'acme', login: 'admin@example.com', api_key: 'odoo-api-key-0123456789', streams: ['partners'] } }, 'partners');

  it('are marked deleted by the next deletion sweep, which lists ids only; archived ones stay', async () => {
    const partners: StoredRecord[] = [1, 2, 3].map((id) => ({ id, email: `p${id}@example.com`, active: id !== 2, writtenUs: microsecondsOf('2024-05-02 10:00:00') }));
    fakeOdoo(odoo, partners, 'microseconds');
    // The first run reads the partners and sweeps (none swept yet): nothing to delete.
    expect(await syncNow(setup.hub, 'erp')).toMatchObject({ status: 'succeeded', created: 3, deleted: 0 });
    const three = (await goldenOf(setup.db.pool, 'erp', '3'))!;

    partners.pop();
    // Within deletion_sweep_hours of the last sweep, a run reads changes only and cannot see the deletion.
    expect(await syncNow(setup.hub, 'erp')).toMatchObject({ status: 'succeeded', deleted: 0 });
    await setup.db.pool.query("update stream_state set state = state - 'swept_at' where source = 'erp'");
    expect(await syncNow(setup.hub, 'erp')).toMatchObject({ status: 'succeeded', deleted: 1 });

    const { rows } = await setup.db.pool.query("select external_id, deleted_at is not null as deleted from raw_record where source = 'erp' order by external_id");
    expect(rows).toEqual([
      { external_id: '1', deleted: false },
      { external_id: '2', deleted: false },
      { external_id: '3', deleted: true },
    ]);
    expect(await goldenOf(setup.db.pool, 'erp', '3')).toBeUndefined();
    expect((await golden(setup.db.pool, three)).status).toBe('retired');
  });
});

describe('records a source reports deleted (Zendesk: a user no longer active)', () => {
  const zendesk = 'https://acme.zendesk.com';
  const setup = hubWithSource({ name: 'desk', connector: 'zendesk', config: { subdomain: 'acme', email: 'admin@acme.example.com', api_token: 'zendesk-token-0123456789', streams: ['users'] } }, 'users');
  const user = (id: number, active: boolean, updatedAt: string) => ({ id, email: `u${id}@example.com`, active, updated_at: updatedAt });
  const exportPage = (users: object[]) => ({ users, identities: [], after_cursor: 'next', end_of_stream: true });

  it('are marked deleted when the export shows the deletion, and leave their golden records', async () => {
    nock(zendesk).get('/api/v2/incremental/users/cursor.json').query(true).reply(200, exportPage([user(1, true, '2024-05-02T10:00:00Z'), user(2, true, '2024-05-02T10:00:00Z')]));
    expect(await syncNow(setup.hub, 'desk')).toMatchObject({ status: 'succeeded', created: 2, deleted: 0 });
    const two = (await goldenOf(setup.db.pool, 'desk', '2'))!;

    nock(zendesk).get('/api/v2/incremental/users/cursor.json').query({ cursor: 'next', per_page: '1000', include: 'identities' }).reply(200, exportPage([user(2, false, '2024-05-03T08:00:00Z')]));
    expect(await syncNow(setup.hub, 'desk')).toMatchObject({ status: 'succeeded', created: 0, updated: 0, deleted: 1 });

    const { rows } = await setup.db.pool.query("select external_id, deleted_at is not null as deleted, data->>'active' as active from raw_record where source = 'desk' order by external_id");
    // Kept as last received, before the deletion.
    expect(rows).toEqual([
      { external_id: '1', deleted: false, active: 'true' },
      { external_id: '2', deleted: true, active: 'true' },
    ]);
    expect(await goldenOf(setup.db.pool, 'desk', '2')).toBeUndefined();
    expect((await golden(setup.db.pool, two)).status).toBe('retired');
    expect(nock.pendingMocks()).toEqual([]);
  });
});

describe('records a source lists as deleted (Freshdesk: contacts with state=deleted)', () => {
  const freshdesk = 'https://acme.freshdesk.com';
  const setup = hubWithSource({ name: 'helpdesk', connector: 'freshdesk', config: { domain: 'acme', api_key: 'freshdesk-key-0123456789', streams: ['contacts'] } }, 'contacts');
  const contact = (id: number) => ({ id, email: `c${id}@example.com`, updated_at: '2024-05-02T10:00:00Z' });
  const changes = () => nock(freshdesk).get('/api/v2/contacts').query((query) => '_updated_since' in query);
  const deletedList = () => nock(freshdesk).get('/api/v2/contacts').query((query) => query.state === 'deleted');

  it('are marked deleted by the next listing of deleted contacts, and leave their golden records', async () => {
    changes().reply(200, [contact(1), contact(2)]);
    deletedList().reply(200, []);
    expect(await syncNow(setup.hub, 'helpdesk')).toMatchObject({ status: 'succeeded', created: 2, deleted: 0 });
    const two = (await goldenOf(setup.db.pool, 'helpdesk', '2'))!;

    // Deleted in Freshdesk: gone from the _updated_since list; the next listing of deleted contacts (due again) names it.
    await setup.db.pool.query("update stream_state set state = state - 'swept_at' where source = 'helpdesk'");
    changes().reply(200, []);
    deletedList().reply(200, [{ ...contact(2), deleted: true }]);
    expect(await syncNow(setup.hub, 'helpdesk')).toMatchObject({ status: 'succeeded', created: 0, updated: 0, deleted: 1 });

    const { rows } = await setup.db.pool.query("select external_id, deleted_at is not null as deleted from raw_record where source = 'helpdesk' order by external_id");
    expect(rows).toEqual([
      { external_id: '1', deleted: false },
      { external_id: '2', deleted: true },
    ]);
    expect(await goldenOf(setup.db.pool, 'helpdesk', '2')).toBeUndefined();
    expect((await golden(setup.db.pool, two)).status).toBe('retired');
    expect(nock.pendingMocks()).toEqual([]);
  });
});
