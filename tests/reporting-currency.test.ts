/**
 * Issue 6, revenue in a reporting currency: per currency always; converted into the configured reporting currency only
 * at the rates the configuration gives, a currency without a rate listed apart and left out of the totals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { checkConfig, ConfigError } from '../hub/config.js';
import { silentLogger } from '../hub/log.js';
import type { PoolClient } from '../hub/db/database.js';
import { refreshCustomerValue } from '../hub/customer-value.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp, seedInteraction } from './helpers/app.js';
import { goldenOf, ingest, rawRecordId } from './helpers/pipeline.js';

let db: TestDatabase;
const apps: FastifyInstance[] = [];
let key: string;
const ids = { ann: '', bob: '' };
const daysAgo = (days: number) => new Date(Date.now() - days * 86_400_000).toISOString();
const reporting = { currency: 'EUR', exchange_rates: { USD: 0.92, GBP: 1.17 } };

/** An API on the test database with this configuration (the hub reads `reporting` from it). */
async function api(config: object): Promise<FastifyInstance> {
  const hub: Hub = { pool: db.pool, config: checkConfig({ sources: [], ...config }, 'test.yaml'), log: silentLogger };
  const app = await buildTestApp(hub);
  apps.push(app);
  return app;
}

async function valueOf(app: FastifyInstance, id: string) {
  const response = await app.inject({ url: `/v1/customers/${id}`, headers: bearer(key) });
  expect(response.statusCode).toBe(200);
  return response.json().value;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await registerSources(db.pool, checkConfig({ sources: [] }, 'test.yaml'));
  await ingest(db.pool, 'shop', [
    { id: 'a', given: 'Ann', family: 'Able', email: 'ann@example.com' },
    { id: 'b', given: 'Bob', family: 'Baker', email: 'bob@example.com' },
  ]);
  ids.ann = (await goldenOf(db.pool, 'shop', 'a'))!;
  ids.bob = (await goldenOf(db.pool, 'shop', 'b'))!;
  const ann = await rawRecordId(db.pool, 'shop', 'a');
  const bob = await rawRecordId(db.pool, 'shop', 'b');
  // Ann: EUR, USD and GBP this year, JPY (no rate) two years ago, and a cancelled EUR order that never counts.
  await seedInteraction(db.pool, ann, 0, { kind: 'order', occurred_at: daysAgo(10), amount: 100, currency: 'EUR' });
  await seedInteraction(db.pool, ann, 1, { kind: 'order', occurred_at: daysAgo(20), amount: 50, currency: 'USD' });
  await seedInteraction(db.pool, ann, 2, { kind: 'order', occurred_at: daysAgo(30), amount: 10, currency: 'gbp' });
  await seedInteraction(db.pool, ann, 3, { kind: 'order', occurred_at: daysAgo(700), amount: 12000, currency: 'JPY' });
  await seedInteraction(db.pool, ann, 4, { kind: 'order', occurred_at: daysAgo(5), amount: 999, currency: 'EUR', status: 'cancelled' });
  // Bob: USD only.
  await seedInteraction(db.pool, bob, 0, { kind: 'order', occurred_at: daysAgo(3), amount: 19.99, currency: 'USD' });
  await refreshCustomerValue(db.pool as unknown as PoolClient, Object.values(ids));
  key = await createApiKey(db.pool, 'reader', ['read']);
});

afterAll(async () => {
  for (const app of apps) await app.close();
  await db?.drop();
});

describe('revenue in a reporting currency', () => {
  it('converts the currencies that have a rate, and lists the one without apart, out of the totals', async () => {
    const value = await valueOf(await api({ reporting }), ids.ann);
    // The amounts per currency stay as they are.
    expect(value.revenue).toEqual({ EUR: 100, USD: 50, GBP: 10, JPY: 12000 });
    expect(value.rfm.monetary_365_days).toEqual({ EUR: 100, USD: 50, GBP: 10 });
    expect(value.reporting).toEqual({
      currency: 'EUR',
      // 100 + 50 × 0.92 + 10 × 1.17
      revenue: 157.7,
      monetary_365_days: 157.7,
      complete: false,
      not_converted: { revenue: { JPY: 12000 }, monetary_365_days: {} },
    });
  });

  it('is complete when every currency has a rate; the reporting currency itself needs none', async () => {
    expect((await valueOf(await api({ reporting }), ids.bob)).reporting).toEqual({
      currency: 'EUR',
      revenue: 18.39,
      monetary_365_days: 18.39,
      complete: true,
      not_converted: { revenue: {}, monetary_365_days: {} },
    });
    // Reporting in USD without rates: only USD counts, EUR and GBP and JPY are listed apart.
    expect((await valueOf(await api({ reporting: { currency: 'USD' } }), ids.ann)).reporting).toEqual({
      currency: 'USD',
      revenue: 50,
      monetary_365_days: 50,
      complete: false,
      not_converted: { revenue: { EUR: 100, GBP: 10, JPY: 12000 }, monetary_365_days: { EUR: 100, GBP: 10 } },
    });
  });

  it('answers no reporting figures without a reporting currency in the configuration', async () => {
    const value = await valueOf(await api({}), ids.ann);
    expect(value.revenue).toEqual({ EUR: 100, USD: 50, GBP: 10, JPY: 12000 });
    expect(value).not.toHaveProperty('reporting');
  });

  it('refuses a configuration with a malformed currency or rate, naming the field', () => {
    const problems = (config: object) => {
      try {
        checkConfig({ sources: [], reporting: config }, 'hub.config.yaml');
      } catch (error) {
        return (error as ConfigError).problems;
      }
      return [];
    };
    expect(problems({ currency: 'eur' })).toEqual(['reporting.currency: must match pattern "^[A-Z]{3}$"']);
    expect(problems({ currency: 'EUR', exchange_rates: { USD: 0 } })).toEqual(['reporting.exchange_rates.USD: must be > 0']);
    expect(problems({ currency: 'EUR', exchange_rates: { dollars: 1.1 } })).toEqual(['reporting.exchange_rates.dollars: is not a known key']);
    expect(problems({ exchange_rates: { USD: 0.92 } })).toEqual(['reporting.currency: is required']);
    expect(problems(reporting)).toEqual([]);
  });
});
