/** Issue 6, privacy and reversibility: erasure (and that a later sync does not bring the person back), export of one person, bulk export, source removal. */
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { createApiKey } from '../hub/auth.js';
import { removeSource } from '../hub/privacy.js';
import { customerLines } from '../hub/routes/export.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';
import { buildTestApp, bearer } from './helpers/app.js';
import { goldenOf, golden, lastPosition, changesAfter, orphanedRows } from './helpers/pipeline.js';

let db: TestDatabase;
let dir: string;
let hub: TestHub;
let app: FastifyInstance;
const keys = { read: '', admin: '' };
const mapping = (stream: string) =>
  `streams:\n  ${stream}:\n    fields:\n      - { target: person.email, from: email, transforms: [email] }\n      - { target: person.phone, from: phone, transforms: [phone] }\n      - { target: person.full_name, from: name, transforms: [normalise_text] }\n`;
const writeCsv = (file: string, rows: string[]) => writeFile(join(dir, file), ['id,email,phone,name', ...rows].join('\n') + '\n');
const contacts = ['1,jo@example.com,020 7946 0001,Jo Bloggs', '2,sam@example.com,020 7946 0002,Sam Smith'];
const crm = ['c1,jo@example.com,,Joanna Bloggs', 'c2,kim@example.com,,Kim Lee', 'c3,sam@example.com,020 7946 0009,Sam Smith'];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(join(tmpdir(), 'hub-privacy-'));
  await writeFile(join(dir, 'rows.yaml'), mapping('rows'));
  await writeCsv('contacts.csv', contacts);
  await writeCsv('crm.csv', crm);
  const config = checkConfig(
    {
      sources: [
        { name: 'contacts', connector: 'csv', default_region: 'GB', mapping: 'rows.yaml', config: { path: 'contacts.csv', id_column: 'id' } },
        { name: 'crm', connector: 'csv', default_region: 'GB', mapping: 'rows.yaml', config: { path: 'crm.csv', id_column: 'id' } },
      ],
    },
    join(dir, 'hub.config.yaml'),
  );
  hub = await startTestHub(db, undefined, config);
  app = await buildTestApp(hub);
  keys.read = await createApiKey(db.pool, 'reader', ['read']);
  keys.admin = await createApiKey(db.pool, 'dpo', ['admin']);
  expect(await syncNow(hub, 'contacts')).toMatchObject({ status: 'succeeded', created: 2 });
  expect(await syncNow(hub, 'crm')).toMatchObject({ status: 'succeeded', created: 3 });
});

afterAll(async () => {
  await app?.close();
  await hub?.stop();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

const inject = async (method: 'GET' | 'POST', url: string, key: string | null) => {
  const response = await app.inject({ method, url, headers: key ? bearer(key) : {} });
  return { status: response.statusCode, headers: response.headers, body: response.body ? response.json() : undefined, text: response.body };
};

const nowhere = { raw: 0, canonical: 0, match_keys: 0, block_keys: 0, golden: 0, lineage: 0, interactions: 0, decisions: 0 };
/** Every place a value could hide: raw, canonical, match and blocking keys, golden records, lineage, interactions, steward decisions. */
async function occurrences(value: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query(
    `select (select count(*) from raw_record where data::text ilike $1)::int as raw,
            (select count(*) from canonical_record where data::text ilike $1)::int as canonical,
            (select count(*) from match_key where value ilike $1)::int as match_keys,
            (select count(*) from block_key where key ilike $1)::int as block_keys,
            (select count(*) from golden_record where data::text ilike $1)::int as golden,
            (select count(*) from attribute_lineage where value::text ilike $1)::int as lineage,
            (select count(*) from interaction where data::text ilike $1)::int as interactions,
            (select count(*) from steward_decision where value::text ilike $1 or reason ilike $1)::int as decisions`,
    [`%${value}%`],
  );
  return rows[0];
}

describe('GET /v1/customers/{id}/export', () => {
  it('answers everything held on one person to an admin key, and 403 to a read key', async () => {
    const sam = (await goldenOf(db.pool, 'contacts', '2'))!;
    expect(await goldenOf(db.pool, 'crm', 'c3')).toBe(sam);
    expect((await inject('GET', `/v1/customers/${sam}/export`, keys.read)).status).toBe(403);
    const { status, body } = await inject('GET', `/v1/customers/${sam}/export`, keys.admin);
    expect(status).toBe(200);
    expect(body.customer).toMatchObject({ id: sam, attributes: { email: 'sam@example.com', full_name: 'Sam Smith' } });
    expect(body.source_records.map((record: { source: string; external_id: string }) => `${record.source}/${record.external_id}`)).toEqual(['contacts/2', 'crm/c3']);
    expect(body.source_records[0]).toMatchObject({
      stream: 'rows',
      raw: { id: '2', email: 'sam@example.com', phone: '020 7946 0002', name: 'Sam Smith' },
      canonical: { person: { full_name: 'Sam Smith' } },
      interactions: [],
    });
    expect(body.memberships).toHaveLength(2);
    expect(body.changes.map((change: { kind: string }) => change.kind)).toEqual(['created', 'updated']);
    expect(body.quarantine).toEqual([]);
  });
});

describe('POST /v1/customers/{id}/erase', () => {
  let jo: string;
  beforeAll(async () => {
    jo = (await goldenOf(db.pool, 'contacts', '1'))!;
    expect(await goldenOf(db.pool, 'crm', 'c1')).toBe(jo);
  });

  it('is for admin keys only', async () => {
    expect((await inject('POST', `/v1/customers/${jo}/erase`, keys.read)).status).toBe(403);
    expect((await inject('POST', `/v1/customers/${jo}/erase`, null)).status).toBe(401);
  });

  it("removes the person's raw, canonical and golden data, keeps hashed tombstones and an audit row, and logs an `erased` change", async () => {
    expect((await occurrences('jo@example.com')).raw).toBe(2);
    const pin = await app.inject({ method: 'PUT', url: `/v1/customers/${jo}/pins/full_name`, headers: bearer(keys.admin), payload: { value: 'Jo Bloggs', reason: 'Jo Bloggs asked' } });
    expect(pin.statusCode, pin.body).toBe(200);
    expect((await occurrences('Bloggs')).decisions).toBe(1);
    const before = await lastPosition(db.pool);
    const { status, body } = await inject('POST', `/v1/customers/${jo}/erase`, keys.admin);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      id: jo,
      erased_by: 'key:dpo',
      removed: { raw_records: 2, canonical_records: 2, memberships: 2, quarantine_entries: 0, interactions: 0 },
      source_records: [
        { source: 'contacts', stream: 'rows', external_id: '1' },
        { source: 'crm', stream: 'rows', external_id: 'c1' },
      ],
    });
    expect(body.removed.match_keys).toBe(3); // jo@ twice (one per record) and the phone
    expect(body.removed.lineage_entries).toBeGreaterThan(0);
    expect(body.write_back).toMatch(/not pushed/i);
    expect(await occurrences('jo@example.com')).toEqual(nowhere);
    expect(await occurrences('Bloggs')).toEqual(nowhere);
    expect(await orphanedRows(db.pool)).toEqual({ match_keys: 0, block_keys: 0, lineage: 0, memberships: 0 });
    expect(await golden(db.pool, jo)).toEqual({ status: 'erased', merged_into: null, data: {} });
    const { rows: tombstones } = await db.pool.query('select kind, key_hash from erasure_tombstone order by kind');
    expect(tombstones.map((row) => row.kind)).toEqual(['content', 'content', 'email', 'phone', 'record', 'record']);
    expect(tombstones.every((row) => /^[0-9a-f]{64}$/.test(row.key_hash))).toBe(true);
    const { rows: audit } = await db.pool.query('select golden_id, actor, erased_at from erasure');
    expect(audit).toEqual([{ golden_id: jo, actor: 'key:dpo', erased_at: expect.any(Date) }]);
    expect(await changesAfter(db.pool, before)).toEqual([expect.objectContaining({ golden_id: jo, kind: 'erased', detail: { erasure_id: body.erasure_id, records: 2 } })]);
  });

  it('answers 410 HUB_ERR_ERASED afterwards, on read and on a second erasure', async () => {
    expect(await inject('GET', `/v1/customers/${jo}`, keys.read)).toMatchObject({ status: 410, body: { error: { code: 'HUB_ERR_ERASED' } } });
    expect(await inject('POST', `/v1/customers/${jo}/erase`, keys.admin)).toMatchObject({ status: 410, body: { error: { code: 'HUB_ERR_ERASED' } } });
    expect((await inject('GET', '/v1/lookup?email=jo@example.com', keys.read)).status).toBe(404);
  });

  it('keeps a later sync of the same files from bringing the person back, even with changed rows, and counts them as skipped', async () => {
    const run = await syncNow(hub, 'contacts');
    expect(run).toMatchObject({ status: 'succeeded', read: 2, created: 0, skipped: 1 });
    await writeCsv('crm.csv', ['c1,jo@example.com,,Joanna B. Bloggs', ...crm.slice(1)]);
    expect(await syncNow(hub, 'crm')).toMatchObject({ status: 'succeeded', read: 3, created: 0, updated: 0, skipped: 1 });
    expect(await occurrences('jo@example.com')).toEqual(nowhere);
    const { rows } = await db.pool.query("select count(*)::int as n from golden_record where status = 'active'");
    expect(rows[0].n).toBe(2); // Sam and Kim
  });
});

describe('GET /v1/export/customers', () => {
  it('streams every active golden record as NDJSON, in keyset pages', async () => {
    // A few thousand more customers, set-based; and some that are not active.
    await db.pool.query(
      `insert into golden_record (id, seq, data) select 'cus_' || s, s, jsonb_build_object('full_name', 'Person ' || s) from (select nextval('golden_record_seq') as s from generate_series(1, 3000)) x`,
    );
    await db.pool.query(`update golden_record set status = 'retired', data = '{}' where seq in (select seq from golden_record order by seq desc limit 5)`);
    const { rows } = await db.pool.query<{ id: string }>("select id from golden_record where status = 'active' order by seq");
    expect(rows.length).toBe(2997);
    const query = vi.spyOn(db.pool, 'query');
    const response = await app.inject({ method: 'GET', url: '/v1/export/customers', headers: bearer(keys.read) });
    const pages = query.mock.calls.filter(([statement]) => typeof statement === 'object' && String((statement as { text: string }).text).includes("status = 'active' and seq >")).length;
    query.mockRestore();
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    const lines = response.body.trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(lines.map((line) => line.id)).toEqual(rows.map((row) => row.id));
    expect(lines.at(-1)).toEqual({ id: expect.any(String), attributes: { full_name: expect.stringMatching(/^Person /) }, created_at: expect.any(String), updated_at: expect.any(String) });
    expect(pages).toBe(3); // 1000 + 1000 + 997 rows
  });

  it('reads a page only when the reader asks for it (constant memory)', async () => {
    const query = vi.spyOn(db.pool, 'query');
    const lines = customerLines(db.pool, 100);
    const first = await lines.next();
    expect(first.value.split('\n').filter(Boolean)).toHaveLength(100);
    await lines.return(undefined);
    expect(query).toHaveBeenCalledTimes(1);
    query.mockRestore();
  });

  it('needs an API key', async () => {
    expect((await inject('GET', '/v1/export/customers', null)).status).toBe(401);
  });
});

describe('removing a source', () => {
  it("takes its records out of every golden record, recomputed with the cause, and keeps the other sources' data", async () => {
    const sam = (await goldenOf(db.pool, 'crm', 'c3'))!;
    const kim = (await goldenOf(db.pool, 'crm', 'c2'))!;
    expect(await goldenOf(db.pool, 'contacts', '2')).toBe(sam);
    const before = await lastPosition(db.pool);
    const removal = await removeSource(db.pool, 'crm', 'cli:test');
    expect(removal).toMatchObject({ source: 'crm', raw_records: 2, golden: { retired: 1, updated: 1 } });

    const changes = await changesAfter(db.pool, before);
    expect(changes.map((change) => `${change.golden_id} ${change.kind}`).sort()).toEqual([`${kim} retired`, `${sam} updated`].sort());
    const { rows: causes } = await db.pool.query('select distinct cause, cause_id, actor from change_log where position > $1', [before]);
    expect(causes).toEqual([{ cause: 'source_removal', cause_id: 'crm', actor: 'cli:test' }]);

    // Sam keeps the contacts record and its values; the crm phone is gone with its record.
    expect(await golden(db.pool, sam)).toMatchObject({ status: 'active', data: { email: 'sam@example.com', phone: '+442079460002', phones: ['+442079460002'], full_name: 'Sam Smith' } });
    expect((await golden(db.pool, kim)).status).toBe('retired');
    const { body } = await inject('GET', `/v1/customers/${sam}`, keys.read);
    expect(body.source_records.map((record: { source: string }) => record.source)).toEqual(['contacts']);
    expect(Object.values(body.alternates).flat().concat(Object.values(body.lineage).flat()).every((entry) => (entry as { source: string }).source === 'contacts')).toBe(true);

    const { rows } = await db.pool.query("select (select count(*) from raw_record where source = 'crm')::int as crm, (select count(*) from raw_record where source = 'contacts')::int as contacts, (select removed_at from source where name = 'crm') as removed_at");
    expect(rows[0]).toEqual({ crm: 0, contacts: 1, removed_at: expect.any(Date) });
    expect(await orphanedRows(db.pool)).toEqual({ match_keys: 0, block_keys: 0, lineage: 0, memberships: 0 });
  });
});
