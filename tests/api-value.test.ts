/** Issue 6, customer value: RFM and segment, revenue per currency, open quotes, tickets, emails awaiting reply, last contact, service load; rate limits per key. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { checkConfig } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import type { PoolClient } from '../hub/db/database.js';
import { refreshCustomerValue } from '../hub/customer-value.js';
import { buildApp } from '../hub/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp, seedInteraction } from './helpers/app.js';
import { goldenOf, ingest, rawRecordId } from './helpers/pipeline.js';

let db: TestDatabase;
let hub: Hub;
let app: FastifyInstance;
let key: string;
const ids = { ann: '', bob: '', cat: '', dan: '' };
const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000 - 3_600_000).toISOString();

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
  await ingest(db.pool, 'shop', [{ id: 's-a', email: 'ann@example.com' }]);
  for (const name of Object.keys(ids) as (keyof typeof ids)[]) ids[name] = (await goldenOf(db.pool, 'crm', name[0]))!;
  const ann = await rawRecordId(db.pool, 'crm', 'a');
  const { rows } = await db.pool.query<{ id: string }>("select id from raw_record where source = 'shop'");
  const annShop = Number(rows[0].id);
  // Ann: three orders in two currencies (one cancelled), two quotes open and one won, tickets, emails.
  await seedInteraction(db.pool, annShop, 0, { kind: 'order', occurred_at: daysAgo(400), amount: 100, currency: 'EUR', external_id: 'O-1' });
  await seedInteraction(db.pool, annShop, 1, { kind: 'order', occurred_at: daysAgo(30), amount: 250.5, currency: 'EUR', external_id: 'O-2' });
  await seedInteraction(db.pool, annShop, 2, { kind: 'order', occurred_at: daysAgo(10), amount: 40, currency: 'usd', external_id: 'O-3', owner: 'web' });
  await seedInteraction(db.pool, annShop, 3, { kind: 'order', occurred_at: daysAgo(5), amount: 999, currency: 'EUR', status: 'cancelled', external_id: 'O-4' });
  await seedInteraction(db.pool, ann, 0, { kind: 'quote', occurred_at: daysAgo(20), amount: 5000, currency: 'EUR', owner: 'Maria Sales', status: 'sent', external_id: 'Q-1' });
  await seedInteraction(db.pool, ann, 1, { kind: 'quote', occurred_at: daysAgo(12), amount: 700, currency: 'EUR', owner: 'Tom Seller', external_id: 'Q-2' });
  await seedInteraction(db.pool, ann, 2, { kind: 'quote', occurred_at: daysAgo(50), amount: 900, currency: 'EUR', owner: 'Old Hand', status: 'won', external_id: 'Q-0' });
  await seedInteraction(db.pool, ann, 3, { kind: 'ticket', occurred_at: daysAgo(8), status: 'open', owner: 'Support Sue', external_id: 'T-1' });
  await seedInteraction(db.pool, ann, 4, { kind: 'ticket', occurred_at: daysAgo(3), status: 'pending', external_id: 'T-2' });
  await seedInteraction(db.pool, ann, 5, { kind: 'ticket', occurred_at: daysAgo(60), status: 'closed', external_id: 'T-0' });
  await seedInteraction(db.pool, ann, 6, { kind: 'email', occurred_at: daysAgo(4), status: 'sent', thread_id: 'th-1' });
  await seedInteraction(db.pool, ann, 7, { kind: 'email', occurred_at: daysAgo(2), status: 'received', thread_id: 'th-1' });
  await seedInteraction(db.pool, ann, 8, { kind: 'email', occurred_at: daysAgo(6), status: 'received', thread_id: 'th-2' });
  await seedInteraction(db.pool, ann, 9, { kind: 'email', occurred_at: daysAgo(1), status: 'sent', thread_id: 'th-2', owner: 'Maria Sales' });
  await seedInteraction(db.pool, ann, 10, { kind: 'web_event', occurred_at: daysAgo(0) });
  // As the IMAP connector marks the last inbound message of a thread left unanswered past its limit.
  await seedInteraction(db.pool, ann, 11, { kind: 'email', occurred_at: daysAgo(5), status: 'awaiting_reply', thread_id: 'th-3' });
  // Bob: two orders 200 and 300 days ago (at risk); Cat: one order 500 days ago (lapsed); Dan: nothing (prospect).
  await seedInteraction(db.pool, await rawRecordId(db.pool, 'crm', 'b'), 0, { kind: 'order', occurred_at: daysAgo(200), amount: 10, currency: 'GBP' });
  await seedInteraction(db.pool, await rawRecordId(db.pool, 'crm', 'b'), 1, { kind: 'order', occurred_at: daysAgo(300), amount: 20, currency: 'GBP' });
  await seedInteraction(db.pool, await rawRecordId(db.pool, 'crm', 'c'), 0, { kind: 'order', occurred_at: daysAgo(500), amount: 5, currency: 'EUR' });
  // Interactions were seeded around the save boundary: refresh the kept figures as it would.
  await refreshCustomerValue(db.pool as unknown as PoolClient, Object.values(ids));

  app = await buildTestApp(hub);
  key = await createApiKey(db.pool, 'reader', ['read']);
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('GET /v1/customers/{id} value', () => {
  it('computes RFM, segment, revenue per currency, open quotes and their salespeople, open tickets, emails awaiting reply, last contact and service load', async () => {
    const response = await app.inject({ url: `/v1/customers/${ids.ann}`, headers: bearer(key) });
    expect(response.statusCode).toBe(200);
    const { value } = response.json();
    expect(value).toEqual({
      computed_at: expect.any(String),
      segment: 'champion',
      rfm: {
        recency_days: 10,
        frequency: 3,
        frequency_365_days: 2,
        monetary_365_days: { EUR: 250.5, USD: 40 },
        first_order_at: expect.any(String),
        last_order_at: expect.any(String),
      },
      revenue: { EUR: 350.5, USD: 40 },
      open_quotes: {
        count: 2,
        salespeople: ['Maria Sales', 'Tom Seller'],
        items: [
          { external_id: 'Q-2', occurred_at: expect.any(String), amount: 700, currency: 'EUR', owner: 'Tom Seller', status: null, raw_record_id: expect.any(Number), source: 'crm' },
          { external_id: 'Q-1', occurred_at: expect.any(String), amount: 5000, currency: 'EUR', owner: 'Maria Sales', status: 'sent', raw_record_id: expect.any(Number), source: 'crm' },
        ],
      },
      open_tickets: {
        count: 2,
        oldest_age_days: 8,
        items: [
          { external_id: 'T-1', opened_at: expect.any(String), age_days: 8, status: 'open', owner: 'Support Sue', raw_record_id: expect.any(Number), source: 'crm' },
          { external_id: 'T-2', opened_at: expect.any(String), age_days: 3, status: 'pending', owner: null, raw_record_id: expect.any(Number), source: 'crm' },
        ],
      },
      emails_awaiting_reply: {
        count: 2,
        items: [
          { thread_id: 'th-3', received_at: expect.any(String), waiting_days: 5, owner: null, raw_record_id: expect.any(Number), source: 'crm' },
          { thread_id: 'th-1', received_at: expect.any(String), waiting_days: 2, owner: null, raw_record_id: expect.any(Number), source: 'crm' },
        ],
      },
      last_contact: { at: expect.any(String), kind: 'email', owner: 'Maria Sales', source: 'crm' },
      owner: 'Maria Sales',
      service_load: { tickets: 3, orders: 3, tickets_per_order: 1 },
    });
  });

  it('labels a customer without orders a prospect, with empty figures', async () => {
    const { value } = (await app.inject({ url: `/v1/customers/${ids.dan}`, headers: bearer(key) })).json();
    expect(value).toMatchObject({
      segment: 'prospect',
      rfm: { recency_days: null, frequency: 0, frequency_365_days: 0, monetary_365_days: {}, first_order_at: null, last_order_at: null },
      revenue: {},
      open_quotes: { count: 0, salespeople: [], items: [] },
      open_tickets: { count: 0, oldest_age_days: null, items: [] },
      emails_awaiting_reply: { count: 0, items: [] },
      last_contact: null,
      owner: null,
      service_load: { tickets: 0, orders: 0, tickets_per_order: null },
    });
  });
});

describe('GET /v1/customers?segment=', () => {
  it.each([
    ['champion', 'ann'],
    ['at_risk', 'bob'],
    ['lapsed', 'cat'],
    ['prospect', 'dan'],
  ] as const)('finds the %s', async (segment, name) => {
    const response = await app.inject({ url: `/v1/customers?segment=${segment}`, headers: bearer(key) });
    expect(response.statusCode).toBe(200);
    expect(response.json().data.map((customer: { id: string }) => customer.id)).toEqual([ids[name]]);
  });

  it('keeps the figures current when the records of a customer change through the save boundary', async () => {
    // Bob's record is mapped again (its seeded orders go: the test mapping has no interactions) and moves to Ann's
    // cluster (shared email): Bob's golden record is retired and loses its figures; Ann's are recomputed.
    await ingest(db.pool, 'crm', [{ id: 'b', given: 'Bob', family: 'Baker', email: 'ann@example.com' }]);
    expect(await goldenOf(db.pool, 'crm', 'b')).toBe(ids.ann);
    const { rows } = await db.pool.query('select golden_id, order_count from customer_value order by golden_id');
    expect(rows).toEqual([
      { golden_id: ids.ann, order_count: 3 },
      { golden_id: ids.cat, order_count: 1 },
    ]);
    expect((await app.inject({ url: '/v1/customers?segment=at_risk', headers: bearer(key) })).json().data).toEqual([]);
  });

  it('rejects an unknown segment', async () => {
    expect((await app.inject({ url: '/v1/customers?segment=whale', headers: bearer(key) })).statusCode).toBe(400);
  });
});

describe('rate limits per key', () => {
  it('answers 429 with Retry-After past HUB_RATE_LIMIT_PER_MINUTE, per key', async () => {
    process.env.HUB_RATE_LIMIT_PER_MINUTE = '3';
    const limited = await buildApp(hub);
    delete process.env.HUB_RATE_LIMIT_PER_MINUTE;
    await limited.ready();
    try {
      const other = await createApiKey(db.pool, 'other', ['read']);
      const statuses = [];
      for (let i = 0; i < 4; i += 1) statuses.push((await limited.inject({ url: '/v1/customers', headers: bearer(key) })).statusCode);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const refused = await limited.inject({ url: '/v1/customers', headers: bearer(key) });
      expect(refused.headers['retry-after']).toMatch(/^[1-6]?[0-9]$/);
      expect(refused.json()).toEqual({ error: { code: 'HUB_ERR_RATE_LIMITED', message: expect.stringContaining('more than 3 requests') } });
      expect((await limited.inject({ url: '/v1/customers', headers: bearer(other) })).statusCode).toBe(200);
      expect((await limited.inject({ url: '/health' })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
