/**
 * Issue 6, read speed: `GET /v1/customers/{id}` serves a stored document (one primary-key read) that every write
 * marks stale in its own transaction, that a write between reading and storing keeps out, and that is served only
 * while its day-counting figures hold; API keys are looked up once per KEY_CACHE_MS.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey, revokeApiKey } from '../hub/auth.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import type { PoolClient } from '../hub/db/database.js';
import { refreshCustomerValue } from '../hub/customer-value.js';
import { buildStaleDocuments, documentFormat, readDocument, storeDocuments } from '../hub/customer-documents.js';
import { eraseCustomer } from '../hub/privacy.js';
import { mergeCustomers } from '../hub/steward.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp, seedInteraction } from './helpers/app.js';
import { goldenOf, ingest, rawRecordId } from './helpers/pipeline.js';

let db: TestDatabase;
let hub: Hub;
let app: FastifyInstance;
let key: string;
const format = documentFormat(undefined);

interface DocumentRow {
  generation: string;
  body: string | null;
  variant: string | null;
  valid_until: Date | null;
}

async function documentOf(id: string): Promise<DocumentRow | undefined> {
  const { rows } = await db.pool.query<DocumentRow>('select generation, body, variant, valid_until from customer_document where golden_id = $1', [id]);
  return rows[0];
}

const get = (id: string) => app.inject({ url: `/v1/customers/${id}`, headers: bearer(key) });

/** A body that no computation produces: if the route answers it, the route served the stored document. */
const PROBE = '{"probe":"stored"}';
const plant = (id: string, columns: { variant?: string; valid_until?: Date | null } = {}) =>
  db.pool.query('update customer_document set body = $2, variant = $3, valid_until = $4 where golden_id = $1', [
    id,
    PROBE,
    columns.variant ?? format.variant,
    columns.valid_until === undefined ? null : columns.valid_until,
  ]);

beforeAll(async () => {
  db = await createTestDatabase();
  hub = { pool: db.pool, config: checkConfig({ sources: [] }, 'test.yaml'), log: silentLogger };
  await registerSources(db.pool, hub.config);
  await ingest(db.pool, 'crm', [
    { id: 'a', given: 'Ann', family: 'Able', email: 'ann@example.com' },
    { id: 'b', given: 'Bob', family: 'Baker', email: 'bob@example.com' },
    { id: 'c', given: 'Cat', family: 'Cole', email: 'cat@example.com' },
    { id: 'd', given: 'Dan', family: 'Dunn', email: 'dan@example.com' },
  ]);
  app = await buildTestApp(hub);
  key = await createApiKey(db.pool, 'reader', ['read']);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('GET /v1/customers/{id} from the stored document', () => {
  it('stores what it computed on the first read and serves it from then on', async () => {
    const ann = (await goldenOf(db.pool, 'crm', 'a'))!;
    const first = await get(ann);
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(first.json()).toMatchObject({ id: ann, status: 'active', attributes: { given_name: 'Ann', email: 'ann@example.com' } });
    const stored = await documentOf(ann);
    expect(stored).toMatchObject({ body: first.body, variant: format.variant });
    await plant(ann);
    expect((await get(ann)).body).toBe(PROBE);
  });

  it('is marked stale by a sync that changes the golden record, and then shows the change', async () => {
    const bob = (await goldenOf(db.pool, 'crm', 'b'))!;
    await get(bob);
    const before = await documentOf(bob);
    expect(before?.body).not.toBeNull();
    await ingest(db.pool, 'crm', [{ id: 'b', given: 'Bob', family: 'Baker-Smith', email: 'bob@example.com' }]);
    const after = await documentOf(bob);
    expect(after?.body).toBeNull();
    expect(Number(after?.generation)).toBeGreaterThan(Number(before?.generation));
    expect((await get(bob)).json().attributes.family_name).toBe('Baker-Smith');
  });

  it('is marked stale when interactions change (refreshCustomerValue), and then shows the new value', async () => {
    const cat = (await goldenOf(db.pool, 'crm', 'c'))!;
    expect((await get(cat)).json().value.rfm.frequency).toBe(0);
    await seedInteraction(db.pool, await rawRecordId(db.pool, 'crm', 'c'), 0, { kind: 'order', occurred_at: new Date().toISOString(), amount: 12, currency: 'EUR' });
    await refreshCustomerValue(db.pool as unknown as PoolClient, [cat]);
    expect((await documentOf(cat))?.body).toBeNull();
    const { value } = (await get(cat)).json();
    expect(value.rfm.frequency).toBe(1);
    expect(value.revenue).toEqual({ EUR: 12 });
  });

  it('answers 308 for a merged-away id and 410 for an erased one, whatever was stored for them', async () => {
    await ingest(db.pool, 'crm', [{ id: 'e', given: 'Eve', family: 'Eames', email: 'eve@example.com' }]);
    const eve = (await goldenOf(db.pool, 'crm', 'e'))!;
    const dan = (await goldenOf(db.pool, 'crm', 'd'))!;
    await get(eve);
    await get(dan);
    // A steward merges the two: the younger one is merged into the older.
    await mergeCustomers(db.pool, [dan, eve], 'one person', 'user:steward');
    expect((await documentOf(eve))?.body).toBeNull();
    const moved = await get(eve);
    expect(moved.statusCode).toBe(308);
    expect(moved.headers.location).toBe(`/v1/customers/${dan}`);
    expect((await documentOf(eve))?.body).toBeNull();

    // The survivor's document holds both records now.
    expect((await get(dan)).json().source_records).toHaveLength(2);
    await eraseCustomer(db.pool, dan, 'key:admin');
    expect((await get(dan)).statusCode).toBe(410);
  });

  it('is not served once a day-counting figure has moved on, nor when it is of another variant', async () => {
    const ann = (await goldenOf(db.pool, 'crm', 'a'))!;
    await get(ann);
    await plant(ann, { valid_until: new Date(Date.now() - 1000) });
    expect((await get(ann)).body).not.toBe(PROBE);
    await plant(ann, { variant: 'another hub version' });
    expect((await get(ann)).body).not.toBe(PROBE);
    await plant(ann, { valid_until: new Date(Date.now() + 60_000) });
    expect((await get(ann)).body).toBe(PROBE);
  });

  it('stays valid until the first whole day after an order, open ticket or waiting thread it counts from', async () => {
    await ingest(db.pool, 'crm', [{ id: 'f', given: 'Fay', family: 'Ford', email: 'fay@example.com' }]);
    const fay = (await goldenOf(db.pool, 'crm', 'f'))!;
    const record = await rawRecordId(db.pool, 'crm', 'f');
    const hour = 3_600_000;
    const day = 24 * hour;
    const order = new Date(Date.now() - 10 * day - 20 * hour);
    const ticket = new Date(Date.now() - 3 * day - 2 * hour);
    const oldQuote = new Date(Date.now() - 2 * day - 23.5 * hour);
    await seedInteraction(db.pool, record, 0, { kind: 'order', occurred_at: order.toISOString(), amount: 5, currency: 'EUR' });
    await seedInteraction(db.pool, record, 1, { kind: 'ticket', occurred_at: ticket.toISOString(), status: 'open' });
    // A quote has no age in the value: it does not limit the document.
    await seedInteraction(db.pool, record, 2, { kind: 'quote', occurred_at: oldQuote.toISOString(), status: 'sent' });
    await refreshCustomerValue(db.pool as unknown as PoolClient, [fay]);
    await get(fay);
    // The order turns 11 days old in 4 hours, the ticket 4 days old in 22: the first of them.
    const validUntil = (await documentOf(fay))!.valid_until!;
    expect(validUntil.getTime()).toBe(order.getTime() + 11 * day);
  });
});

describe('a write between reading and storing', () => {
  it('keeps a document computed before it out of the store', async () => {
    const ann = (await goldenOf(db.pool, 'crm', 'a'))!;
    await db.pool.query('update customer_document set body = null where golden_id = $1', [ann]);
    const read = await readDocument(db.pool, ann, format);
    expect(read.body).toBeNull();
    // A write commits after the reader read the generation and before it stores.
    await db.pool.query('select hub_stale_documents($1::text[])', [[ann]]);
    await storeDocuments(db.pool, [{ id: ann, generation: read.generation, body: PROBE, validUntil: null }], format);
    expect((await documentOf(ann))?.body).toBeNull();
    // With no write in between, it is stored.
    const again = await readDocument(db.pool, ann, format);
    await storeDocuments(db.pool, [{ id: ann, generation: again.generation, body: PROBE, validUntil: null }], format);
    expect((await documentOf(ann))?.body).toBe(PROBE);
  });

  it('keeps it out also when the document had no row yet', async () => {
    const bob = (await goldenOf(db.pool, 'crm', 'b'))!;
    await db.pool.query('delete from customer_document where golden_id = $1', [bob]);
    const read = await readDocument(db.pool, bob, format);
    expect(read.generation).toBe('0');
    await db.pool.query('select hub_stale_documents($1::text[])', [[bob]]);
    await storeDocuments(db.pool, [{ id: bob, generation: read.generation, body: PROBE, validUntil: null }], format);
    expect((await documentOf(bob))?.body).toBeNull();
  });
});

describe('the document builder', () => {
  it('builds every stale document as the route computes it, and drops those of records that are no longer active', async () => {
    const { rows: active } = await db.pool.query<{ id: string }>("select id from golden_record where status = 'active' order by id");
    const { rows: inactive } = await db.pool.query<{ id: string }>("select id from golden_record where status <> 'active'");
    expect(inactive.length).toBeGreaterThan(0);
    await db.pool.query('select hub_stale_documents(array(select id from golden_record))');
    let looked = 0;
    for (let batch; (batch = await buildStaleDocuments(db.pool, undefined, 2)) > 0; ) looked += batch;
    expect(looked).toBe(active.length + inactive.length);
    const { rows: documents } = await db.pool.query<{ golden_id: string; body: string }>('select golden_id, body from customer_document order by golden_id');
    expect(documents.map((row) => row.golden_id)).toEqual(active.map((row) => row.id));
    for (const document of documents) {
      const built = JSON.parse(document.body);
      // Served as built; then computed afresh by the route, it is the same but for the time of computing.
      expect((await get(document.golden_id)).body).toBe(document.body);
      await db.pool.query('update customer_document set body = null where golden_id = $1', [document.golden_id]);
      const computed = (await get(document.golden_id)).json();
      expect({ ...computed, value: { ...computed.value, computed_at: built.value.computed_at } }).toEqual(built);
    }
  });
});

describe('API keys', () => {
  it('stop at once when revoked in this process, and within five seconds when revoked elsewhere', async () => {
    const ann = (await goldenOf(db.pool, 'crm', 'a'))!;
    const here = await createApiKey(db.pool, 'revoked here', ['read']);
    const elsewhere = await createApiKey(db.pool, 'revoked elsewhere', ['read']);
    for (const used of [here, elsewhere]) expect((await app.inject({ url: `/v1/customers/${ann}`, headers: bearer(used) })).statusCode).toBe(200);
    await revokeApiKey(db.pool, 'revoked here');
    expect((await app.inject({ url: `/v1/customers/${ann}`, headers: bearer(here) })).statusCode).toBe(401);
    // As `hub keys revoke` in another process does: this process still holds the key it looked up.
    await db.pool.query("update api_key set revoked_at = now() where name = 'revoked elsewhere'");
    expect((await app.inject({ url: `/v1/customers/${ann}`, headers: bearer(elsewhere) })).statusCode).toBe(200);
    const now = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(now + 5_001);
    try {
      expect((await app.inject({ url: `/v1/customers/${ann}`, headers: bearer(elsewhere) })).statusCode).toBe(401);
    } finally {
      clock.mockRestore();
    }
  });
});
