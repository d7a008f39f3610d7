/** Issue 6, reading: name and organisation search, sparse fields, lookup, timeline filters, consent. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { checkConfig } from '../hub/config.js';
import { saveResolutionSettings } from '../identity-resolution/probabilistic-matcher.js';
import { silentLogger } from '../hub/log.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp, seedInteraction } from './helpers/app.js';
import { golden, goldenOf, ingest, rawRecordId } from './helpers/pipeline.js';

let db: TestDatabase;
let hub: Hub;
let app: FastifyInstance;
const keys = { read: '', steward: '', admin: '' };
const ids = { john: '', jane: '', jon: '', jose: '', stone: '', merged: '' };

beforeAll(async () => {
  db = await createTestDatabase();
  // The deterministic matcher: the merged customer below is joined by a record holding only both emails.
  hub = { pool: db.pool, config: checkConfig({ resolution: { matcher: 'deterministic' }, sources: [] }, 'test.yaml'), log: silentLogger };
  await registerSources(db.pool, hub.config);
  await saveResolutionSettings(db.pool, hub.config.resolution);
  await ingest(db.pool, 'crm', [
    { id: 'c1', given: 'John', family: 'Smith', email: 'john.smith@example.com', phone: '+49 30 1111111', updated: '2025-01-01T10:00:00Z' },
    { id: 'c2', given: 'Jane', family: 'Smith', email: 'jane@example.com', updated: '2025-01-01T10:00:00Z' },
    { id: 'c3', given: 'Jon', family: 'Smithers', email: 'jon@example.com', updated: '2025-01-01T10:00:00Z' },
    { id: 'c4', given: 'José', family: 'Müller', email: 'jose@example.com', updated: '2025-01-01T10:00:00Z' },
    { id: 'c5', given: 'Emma', family: 'Stone', email: 'emma@example.com', email2: 'shared@example.com', updated: '2025-01-01T10:00:00Z' },
    { id: 'c6', given: 'Other', family: 'Person', email: 'other@example.com', updated: '2025-01-01T10:00:00Z' },
  ]);
  // The shop knows John too (same email): one customer with a record in each source.
  await ingest(db.pool, 'shop', [{ id: 's1', given: 'John', family: 'Smith', email: 'john.smith@example.com', city: 'Berlin', updated: '2025-02-01T10:00:00Z' }]);
  ids.john = (await goldenOf(db.pool, 'crm', 'c1'))!;
  ids.jane = (await goldenOf(db.pool, 'crm', 'c2'))!;
  ids.jon = (await goldenOf(db.pool, 'crm', 'c3'))!;
  ids.jose = (await goldenOf(db.pool, 'crm', 'c4'))!;
  ids.stone = (await goldenOf(db.pool, 'crm', 'c5'))!;
  // A customer merged into Emma Stone by a record that links both.
  await ingest(db.pool, 'web', [{ id: 'w0', given: 'Emma', family: 'Stone', email: 'e.stone@example.com', updated: '2025-01-01T10:00:00Z' }]);
  ids.merged = (await goldenOf(db.pool, 'web', 'w0'))!;
  await ingest(db.pool, 'web', [{ id: 'w1', email: 'emma@example.com', email2: 'e.stone@example.com', updated: '2025-03-01T10:00:00Z' }]);
  expect((await golden(db.pool, ids.merged)).merged_into).toBe(ids.stone);
  // The test mapping has no organisation: set one on the golden records directly.
  await db.pool.query(`update golden_record set data = data || '{"organisation": {"name": "Acme Trading GmbH"}}' where id = $1`, [ids.john]);
  await db.pool.query(`update golden_record set data = data || '{"organisation": {"name": "Globex Corporation"}}' where id = $1`, [ids.jane]);

  const shop = await rawRecordId(db.pool, 'shop', 's1');
  const crm = await rawRecordId(db.pool, 'crm', 'c1');
  await seedInteraction(db.pool, shop, 0, { kind: 'order', occurred_at: '2025-01-10T00:00:00Z', external_id: 'O-1', amount: 10, currency: 'EUR' });
  await seedInteraction(db.pool, shop, 1, { kind: 'order', occurred_at: '2025-03-10T00:00:00Z', external_id: 'O-2', amount: 20, currency: 'EUR' });
  await seedInteraction(db.pool, crm, 0, { kind: 'call', occurred_at: '2025-02-10T00:00:00Z', summary: 'Intro' });
  await seedInteraction(db.pool, crm, 1, { kind: 'quote', occurred_at: '2025-03-01T00:00:00Z', external_id: 'Q-1', status: 'open' });

  app = await buildTestApp(hub);
  keys.read = await createApiKey(db.pool, 'reader', ['read']);
  keys.steward = await createApiKey(db.pool, 'steward', ['steward']);
  keys.admin = await createApiKey(db.pool, 'admin', ['admin']);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

async function get(url: string, key: string | null = keys.read) {
  const response = await app.inject({ method: 'GET', url, headers: key ? bearer(key) : {} });
  return { status: response.statusCode, headers: response.headers, body: response.json() };
}

const names = (body: { data: { attributes: { given_name?: string; family_name?: string } }[] }) =>
  body.data.map((customer) => `${customer.attributes.given_name} ${customer.attributes.family_name}`);

describe('GET /v1/customers?name=', () => {
  it('finds John Smith first for "Jonh Smtih" (transposed letters in both words)', async () => {
    const { status, body } = await get('/v1/customers?name=Jonh%20Smtih');
    expect(status).toBe(200);
    expect(names(body)[0]).toBe('John Smith');
    expect(body.data[0].score).toBeGreaterThan(0.8);
    // Scores fall from first to last.
    const scores = body.data.map((customer: { score: number }) => customer.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });

  it('finds the typos it names, each with the expected person first', async () => {
    for (const [query, expected] of [
      ['john smith', 'John Smith'],
      ['Jhon Smith', 'John Smith'],
      ['Jane Smiht', 'Jane Smith'],
      ['jose muller', 'José Müller'],
      ['JOSÉ MÜLER', 'José Müller'],
      ['Smithers', 'Jon Smithers'],
      ['Emma Stoen', 'Emma Stone'],
    ]) {
      const { body } = await get(`/v1/customers?name=${encodeURIComponent(query)}`);
      expect(names(body)[0], query).toBe(expected);
    }
  });

  it('ranks the exact spelling above a near one, and finds all the Smiths by family name', async () => {
    expect(names((await get('/v1/customers?name=Jane%20Smith')).body).slice(0, 2)).toEqual(['Jane Smith', 'John Smith']);
    expect(names((await get('/v1/customers?name=smith')).body)).toEqual(expect.arrayContaining(['John Smith', 'Jane Smith']));
  });

  it('finds nothing for an unrelated name', async () => {
    expect((await get('/v1/customers?name=Zbigniew%20Quartz')).body).toEqual({ data: [], next_cursor: null });
  });

  it('pages through ranked results in the same order', async () => {
    const all = names((await get('/v1/customers?name=smith')).body);
    expect(all.length).toBeGreaterThanOrEqual(3);
    const paged: string[] = [];
    let url = '/v1/customers?name=smith&limit=1';
    for (let i = 0; i < 10; i++) {
      const { body } = await get(url);
      paged.push(...names(body));
      if (!body.next_cursor) break;
      url = `/v1/customers?name=smith&limit=1&cursor=${body.next_cursor}`;
    }
    expect(paged).toEqual(all);
  });

  it('rejects a cursor of the unranked list, and a name without letters', async () => {
    const plain = await get('/v1/customers?limit=1');
    expect((await get(`/v1/customers?name=smith&cursor=${plain.body.next_cursor}`)).body.error.details.field).toBe('querystring/cursor');
    expect((await get('/v1/customers?name=--')).status).toBe(400);
  });

  it('searches organisations by a word, typo-tolerant, and combines with name', async () => {
    expect(names((await get('/v1/customers?organisation=acme')).body)).toEqual(['John Smith']);
    expect(names((await get('/v1/customers?organisation=Globx')).body)).toEqual(['Jane Smith']);
    expect(names((await get('/v1/customers?organisation=globex&name=john')).body)).toEqual([]);
  });
});

describe('GET /v1/customers?fields=', () => {
  it('answers only the named attributes', async () => {
    const { body } = await get(`/v1/customers?email=jane@example.com&fields=given_name,email`);
    expect(body.data).toEqual([{ id: ids.jane, attributes: { given_name: 'Jane', email: 'jane@example.com' }, created_at: expect.any(String), updated_at: expect.any(String) }]);
  });

  it('rejects an unknown attribute and a malformed list', async () => {
    expect(await get('/v1/customers?fields=given_name,shoe_size')).toMatchObject({
      status: 400,
      body: { error: { code: 'HUB_ERR_VALIDATION', message: "querystring/fields has no attribute 'shoe_size'", details: { field: 'querystring/fields' } } },
    });
    expect((await get('/v1/customers?fields=given_name,,email')).status).toBe(400);
  });
});

describe('GET /v1/lookup', () => {
  it("leads from a source's record id to the customer and its ids in every other source", async () => {
    const { status, body } = await get('/v1/lookup?source=shop&id=s1');
    expect(status).toBe(200);
    expect(body.data).toHaveLength(1);
    expect(body.data[0].customer).toMatchObject({ id: ids.john, attributes: { given_name: 'John', family_name: 'Smith' } });
    expect(body.data[0].source_records).toEqual([
      { id: await rawRecordId(db.pool, 'crm', 'c1'), source: 'crm', stream: 'people', external_id: 'c1' },
      { id: await rawRecordId(db.pool, 'shop', 's1'), source: 'shop', stream: 'people', external_id: 's1' },
    ]);
    expect((await get('/v1/lookup?source=shop&stream=people&id=s1')).body.data[0].customer.id).toBe(ids.john);
  });

  it('looks up by email (any case) and by phone', async () => {
    expect((await get('/v1/lookup?email=John.Smith@Example.com')).body.data.map((found: { customer: { id: string } }) => found.customer.id)).toEqual([ids.john]);
    expect((await get('/v1/lookup?phone=%2B49301111111')).body.data[0].customer.id).toBe(ids.john);
    expect((await get('/v1/lookup?email=shared@example.com')).body.data[0].customer.id).toBe(ids.stone);
  });

  it('answers 404 when nothing matches', async () => {
    expect(await get('/v1/lookup?source=shop&id=nope')).toMatchObject({
      status: 404,
      body: { error: { code: 'HUB_ERR_NOT_FOUND', message: "There is no customer with a record of source 'shop' and id 'nope'." } },
    });
    expect((await get('/v1/lookup?email=nobody@example.com')).status).toBe(404);
    expect((await get('/v1/lookup?source=shop&stream=orders&id=s1')).status).toBe(404);
  });

  it('answers 400 unless exactly one way of looking up is given', async () => {
    for (const query of ['', '?source=shop', '?id=s1', '?email=a@b.c&phone=%2B4930111', '?source=shop&id=1&email=a@b.c', '?source=Shop!&id=1']) {
      const { status, body } = await get(`/v1/lookup${query}`);
      expect(status, query).toBe(400);
      expect(body.error.code).toBe('HUB_ERR_VALIDATION');
    }
  });
});

describe('GET /v1/customers/{id}/timeline filters', () => {
  const seen = async (query: string) =>
    (await get(`/v1/customers/${ids.john}/timeline${query}`)).body.data.map((item: { kind: string; source_record: { source: string } }) => `${item.kind}@${item.source_record.source}`);

  it('filters by kind, one or several', async () => {
    expect(await seen('?kind=order')).toEqual(['order@shop', 'order@shop']);
    expect(await seen('?kind=order&kind=quote')).toEqual(['order@shop', 'quote@crm', 'order@shop']);
  });

  it('filters by time: since inclusive, until exclusive', async () => {
    expect(await seen('?since=2025-02-10T00:00:00Z')).toEqual(['order@shop', 'quote@crm', 'call@crm']);
    expect(await seen('?until=2025-02-10T00:00:00Z')).toEqual(['order@shop']);
    expect(await seen('?kind=order&since=2025-02-01T00:00:00Z&until=2025-12-31T00:00:00Z')).toEqual(['order@shop']);
  });

  it('pages within a filter, and links each item to its source record', async () => {
    const first = await get(`/v1/customers/${ids.john}/timeline?kind=order&limit=1`);
    expect(first.body.data[0]).toMatchObject({ external_id: 'O-2', source_record: { source: 'shop', external_id: 's1', stream: 'people' } });
    const second = await get(`/v1/customers/${ids.john}/timeline?kind=order&limit=1&cursor=${first.body.next_cursor}`);
    expect(second.body).toMatchObject({ data: [{ external_id: 'O-1' }], next_cursor: null });
  });

  it('rejects an unknown kind', async () => {
    expect((await get(`/v1/customers/${ids.john}/timeline?kind=meeting`)).body.error.details.field).toBe('querystring/kind/0');
  });
});

describe('PUT /v1/customers/{id}/consent', () => {
  const put = (id: string, body: unknown, key: string | null = keys.steward) =>
    app.inject({ method: 'PUT', url: `/v1/customers/${id}/consent`, headers: key ? bearer(key) : {}, payload: body as object });

  it('records the decision through the hub source and answers the updated customer', async () => {
    const response = await put(ids.jane, { email_marketing: 'opt_out' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.id).toBe(ids.jane);
    expect(body.attributes.email_marketing).toEqual({ status: 'opt_out', at: expect.any(String), source: 'hub' });
    expect(body.lineage.email_marketing).toEqual([expect.objectContaining({ value: expect.objectContaining({ status: 'opt_out' }), source: 'hub' })]);
    expect(body.source_records.map((record: { source: string }) => record.source).sort()).toEqual(['crm', 'hub']);
    const { rows } = await db.pool.query("select data->>'actor' as actor from raw_record where source = 'hub' and external_id = $1", [ids.jane]);
    expect(rows).toEqual([{ actor: 'key:steward' }]);
    // And back: the newer decision wins.
    expect((await put(ids.jane, { email_marketing: 'opt_in' })).json().attributes.email_marketing.status).toBe('opt_in');
  });

  it('redirects a merged id with 308 to the survivor’s consent', async () => {
    const response = await put(ids.merged, { email_marketing: 'opt_out' });
    expect(response.statusCode).toBe(308);
    expect(response.headers.location).toBe(`/v1/customers/${ids.stone}/consent`);
    expect(response.json()).toEqual({ merged_into: ids.stone });
  });

  it('needs the steward scope, and a valid body', async () => {
    expect((await put(ids.jane, { email_marketing: 'opt_out' }, null)).statusCode).toBe(401);
    expect((await put(ids.jane, { email_marketing: 'opt_out' }, keys.read)).statusCode).toBe(403);
    expect((await put(ids.jane, { email_marketing: 'opt_out' }, keys.admin)).statusCode).toBe(200);
    const bad = await put(ids.jane, { email_marketing: 'maybe' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.field).toBe('body/email_marketing');
    expect((await put('cus_999999', { email_marketing: 'opt_out' })).statusCode).toBe(404);
  });
});

describe('authorisation of the read routes', () => {
  it.each(['/v1/lookup?email=jane@example.com', '/v1/customers?name=smith', `/v1/customers/cus_1/timeline?kind=order`])('%s: 401 without a key', async (url) => {
    expect((await get(url, null)).status).toBe(401);
    expect((await get(url, 'hub_wrong')).status).toBe(401);
  });
});
