/**
 * Issue 6, consent across two sources: an opt-out recorded in Shopify reaches Odoo, and one recorded in Odoo reaches
 * Shopify, each in the write-back cycle after the sync that brought it in, and the API at once. Real connectors on a
 * real database and job queue; the vendors' APIs are replayed with nock and every write body is asserted. Also: a
 * write the system refuses is logged and sent again by the next cycle, echoes read back write nothing, and a source
 * whose system has no consent field (WooCommerce core) is never sent one.
 */
import nock from 'nock';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { checkConfig } from '../hub/config.js';
import { createApiKey } from '../hub/auth.js';
import { executeWriteBackJob, runWriteBackCycle, writeBackSource, WRITE_BACK_QUEUE, type JobResult, type WriteBackJob } from '../hub/write-back.js';
import { consentUpdateMutation } from '../connectors/shopify/write-back.js';
import { fixture } from '../connectors/kit/testing.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { goldenOf } from './helpers/pipeline.js';

const shop = 'https://acme.myshopify.com';
const shopPath = '/admin/api/2025-01/graphql.json';
const odoo = 'https://acme.odoo.com';

// --- Shopify -----------------------------------------------------------------------------------------

const subscribed = { marketingState: 'SUBSCRIBED', marketingOptInLevel: 'SINGLE_OPT_IN', consentUpdatedAt: '2024-04-30T12:00:00Z' };
function shopCustomer(id: string, email: string, updatedAt: string, consent: Record<string, string> = subscribed) {
  return { id: `gid://shopify/Customer/${id}`, legacyResourceId: id, firstName: null, lastName: null, email, phone: null, updatedAt, emailMarketingConsent: consent, defaultAddress: null };
}
const bob = { email: 'bob@example.com', shopId: '1001', partnerId: 26 };
const ann = { email: 'ann@example.com', shopId: '1002', partnerId: 27 };

/** Shopify's GraphQL endpoint: a read answers `customers`, a consent mutation is recorded and answered. */
function shopify(customers: object[], writes: unknown[]) {
  return nock(shop)
    .post(shopPath)
    .times(10)
    .reply(200, (_uri, body: any) => {
      if (String(body.query).includes('customerEmailMarketingConsentUpdate')) {
        writes.push(body);
        return { data: { customerEmailMarketingConsentUpdate: { customer: { id: body.variables.input.customerId }, userErrors: [] } } };
      }
      return { data: { customers: { pageInfo: { hasNextPage: false, endCursor: null }, nodes: customers.splice(0) } } };
    });
}

// --- Odoo ----------------------------------------------------------------------------------------------

const fieldTypes = { ...fixture(import.meta.url, '../connectors/odoo/fixtures/fields-get-partner.json').result, x_no_marketing: { type: 'boolean' } };
function partner(id: number, email: string, writeDate: string, noMarketing: boolean) {
  return { id, name: email.split('@')[0], email, phone: false, commercial_company_name: false, x_no_marketing: noMarketing, write_date: writeDate };
}
const refused = fixture(import.meta.url, '../connectors/odoo/fixtures/error-invalid-field.json');

/**
 * Odoo's JSON-RPC endpoint: authenticate, fields_get, a search_read that hands out `partners` once, and partner
 * writes, recorded as [ids, values]; `refuse` answers the next writes with Odoo's error.
 */
function odooServer(partners: object[], writes: unknown[], refuse = 0) {
  return nock(odoo)
    .post('/jsonrpc')
    .times(20)
    .reply(200, (_uri, body: any) => {
      const [, , , model, method, args] = body.params.args;
      const answer = (result: unknown) => ({ jsonrpc: '2.0', id: body.id, result });
      if (body.params.method === 'authenticate') return answer(2);
      if (method === 'fields_get') return answer(fieldTypes);
      if (method === 'search_read') return answer(partners.splice(0));
      if (model === 'res.partner' && method === 'write') {
        if (refuse-- > 0) return { ...refused, id: body.id };
        writes.push(args);
        return answer(true);
      }
      throw new Error(`unexpected Odoo call ${model}.${method}`);
    });
}

// Odoo has no consent of its own: the opt-out lives in a boolean partner field the company adds, read as an
// opt-out when set (an unset field says nothing, so a later edit of the partner never re-asserts an opt-in).
const odooMapping = `streams:
  partners:
    fields:
      - { target: observed_at, from: write_date, transforms: [parse_timestamp] }
      - { target: identifier, from: id, scheme: "odoo:partner_id", verified: true }
      - { target: person.full_name, from: name, transforms: [normalise_text] }
      - { target: person.email, from: email, transforms: [email] }
      - target: consent.email_marketing
        from: x_no_marketing
        transforms: [{ map_values: { values: { "true": opt_out }, default: "" } }]
`;

let db: TestDatabase;
let hub: TestHub;
let app: FastifyInstance;
let key: string;

beforeAll(async () => {
  nock.disableNetConnect();
  db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'consent-'));
  await writeFile(join(dir, 'odoo.yaml'), odooMapping);
  const config = checkConfig(
    {
      sources: [
        {
          name: 'shop',
          connector: 'shopify',
          // No deletion sweeps: the fake store does not list ids (sweeps: connectors/odoo, connectors/shopify, tests/deletions).
          config: { shop: 'acme', access_token: 'shpat_test', streams: ['customers'], deletion_sweep_hours: 0 },
          write_back: { enabled: true, attributes: { email_marketing: true } },
        },
        {
          name: 'crm',
          connector: 'odoo',
          mapping: 'odoo.yaml',
          // No deletion sweeps: the fake server hands its partners out once (sweeps: connectors/odoo, tests/deletions).
          config: { url: odoo, database: 'acme', login: 'admin@example.com', api_key: 'odoo-api-key-0123456789', streams: ['partners'], extra_fields: { partners: ['x_no_marketing'] }, opt_out_field: 'x_no_marketing', deletion_sweep_hours: 0 },
          write_back: { enabled: true, attributes: { email_marketing: true } },
        },
        {
          name: 'woo',
          connector: 'woocommerce',
          config: { url: 'https://woo.example.com', consumer_key: 'ck_test', consumer_secret: 'cs_test' },
          write_back: { enabled: true, attributes: { email: true, email_marketing: true } },
        },
      ],
    },
    join(dir, 'hub.config.yaml'),
  );
  hub = await startTestHub(db, undefined, config);
  app = await buildTestApp(hub);
  key = await createApiKey(db.pool, 'reader', ['read']);
});
afterEach(() => nock.cleanAll());
afterAll(async () => {
  nock.enableNetConnect();
  await app?.close();
  await hub?.stop();
  await db?.drop();
});

/** One write-back cycle of a source: plans it and executes its jobs here, as the worker would. */
async function cycle(source: string): Promise<JobResult[]> {
  const planned = await runWriteBackCycle(hub, source);
  const jobs = (await hub.boss.fetch<WriteBackJob>(WRITE_BACK_QUEUE, { batchSize: 10 })) ?? [];
  expect(jobs).toHaveLength(planned.jobs);
  const results = [];
  for (const job of jobs) {
    results.push(await executeWriteBackJob(hub, job.data, job.id));
    await hub.boss.complete(WRITE_BACK_QUEUE, job.id);
  }
  return results;
}

async function apiConsent(source: string, externalId: string) {
  const id = (await goldenOf(db.pool, source, externalId))!;
  const response = await app.inject({ url: `/v1/customers/${id}`, headers: bearer(key) });
  expect(response.statusCode).toBe(200);
  const body = response.json();
  return { consent: body.attributes.email_marketing, source: body.lineage.email_marketing?.[0]?.source };
}

const consentWrite = (shopId: string, state: string, at: string) => ({
  query: consentUpdateMutation,
  variables: { input: { customerId: `gid://shopify/Customer/${shopId}`, emailMarketingConsent: { marketingState: state, marketingOptInLevel: 'SINGLE_OPT_IN', consentUpdatedAt: at } } },
});

describe('consent across two sources', () => {
  it('starts from a consent both systems agree on: Odoo receives the opt-in it had no field value for, once', async () => {
    const shopWrites: unknown[] = [];
    const odooWrites: unknown[] = [];
    shopify([shopCustomer(bob.shopId, bob.email, '2024-05-01T00:00:00Z'), shopCustomer(ann.shopId, ann.email, '2024-05-01T00:00:00Z')], shopWrites);
    odooServer([partner(bob.partnerId, bob.email, '2024-05-02 10:00:00', false), partner(ann.partnerId, ann.email, '2024-05-02 10:00:00', false)], odooWrites);
    expect((await syncNow(hub, 'shop')).status).toBe('succeeded');
    expect((await syncNow(hub, 'crm')).status).toBe('succeeded');
    expect(await goldenOf(db.pool, 'crm', String(bob.partnerId))).toBe(await goldenOf(db.pool, 'shop', bob.shopId));
    expect(await goldenOf(db.pool, 'crm', String(ann.partnerId))).toBe(await goldenOf(db.pool, 'shop', ann.shopId));

    expect(await cycle('shop')).toEqual([]);
    expect(await cycle('crm')).toEqual([{ written: 2, failed: 0, disabled: false }]);
    expect(odooWrites).toEqual([
      [[bob.partnerId], { x_no_marketing: false }],
      [[ann.partnerId], { x_no_marketing: false }],
    ]);
    expect(shopWrites).toEqual([]);
    // Odoo's mapping never reads an unset field back: what was written is remembered, not written again.
    expect(await cycle('crm')).toEqual([]);
  });

  it('an opt-out in Shopify reaches Odoo, one in Odoo reaches Shopify, each in the next cycle; a refused write goes again', async () => {
    const shopWrites: unknown[] = [];
    const odooWrites: unknown[] = [];
    // Bob unsubscribes in the shop; Ann's partner is marked "no marketing" in Odoo (Odoo keeps UTC without a zone).
    shopify([shopCustomer(bob.shopId, bob.email, '2025-03-01T10:00:00Z', { marketingState: 'UNSUBSCRIBED', marketingOptInLevel: 'SINGLE_OPT_IN', consentUpdatedAt: '2025-03-01T09:59:00Z' })], shopWrites);
    // The first partner write is refused (the field is missing, say): logged, and planned again.
    odooServer([partner(ann.partnerId, ann.email, '2025-03-02 09:00:00', true)], odooWrites, 1);
    expect((await syncNow(hub, 'shop')).status).toBe('succeeded');
    expect((await syncNow(hub, 'crm')).status).toBe('succeeded');

    // The API shows both opt-outs at once, each from the system it was recorded in.
    expect(await apiConsent('shop', bob.shopId)).toEqual({ consent: { status: 'opt_out', at: '2025-03-01T09:59:00.000Z', source: 'shop' }, source: 'shop' });
    expect(await apiConsent('crm', String(ann.partnerId))).toEqual({ consent: { status: 'opt_out', at: '2025-03-02T09:00:00.000Z', source: 'crm' }, source: 'crm' });

    // One cycle each: Shopify receives Ann's opt-out with the decision's time; Odoo refuses Bob's.
    expect(await cycle('shop')).toEqual([{ written: 1, failed: 0, disabled: false }]);
    expect(shopWrites).toEqual([consentWrite(ann.shopId, 'UNSUBSCRIBED', '2025-03-02T09:00:00.000Z')]);
    expect(await cycle('crm')).toEqual([{ written: 0, failed: 1, disabled: false }]);
    const { rows: log } = await db.pool.query("select external_id, request, outcome, error from write_back_log where source = 'crm' order by id desc limit 1");
    expect(log).toEqual([{ external_id: String(bob.partnerId), request: { email_marketing: { status: 'opt_out', at: '2025-03-01T09:59:00.000Z' } }, outcome: 'error', error: expect.stringContaining("Invalid field 'mobile'") }]);
    // The next cycle sends it again, and it goes through.
    expect(await cycle('crm')).toEqual([{ written: 1, failed: 0, disabled: false }]);
    expect(odooWrites).toEqual([[[bob.partnerId], { x_no_marketing: true }]]);
  });

  it('the opt-outs read back from where they were written write nothing', async () => {
    const shopWrites: unknown[] = [];
    const odooWrites: unknown[] = [];
    shopify([shopCustomer(ann.shopId, ann.email, '2025-03-02T09:00:10Z', { marketingState: 'UNSUBSCRIBED', marketingOptInLevel: 'SINGLE_OPT_IN', consentUpdatedAt: '2025-03-02T09:00:00Z' })], shopWrites);
    odooServer([partner(bob.partnerId, bob.email, '2025-03-03 08:00:00', true)], odooWrites);
    expect((await syncNow(hub, 'shop')).status).toBe('succeeded');
    expect((await syncNow(hub, 'crm')).status).toBe('succeeded');
    expect(await cycle('shop')).toEqual([]);
    expect(await cycle('crm')).toEqual([]);
    expect([shopWrites, odooWrites]).toEqual([[], []]);
    // Odoo's field keeps no decision time: its echo is dated by the partner's write_date (the same opt-out, later).
    expect((await apiConsent('shop', bob.shopId)).consent).toEqual({ status: 'opt_out', at: '2025-03-03T08:00:00.000Z', source: 'crm' });
    expect((await apiConsent('shop', ann.shopId)).consent).toEqual({ status: 'opt_out', at: '2025-03-02T09:00:00.000Z', source: 'crm' });
  });

  it('a source whose system cannot store consent is never planned one, even when configured', () => {
    expect(writeBackSource(hub, 'woo').attributes).toEqual(['email']);
    expect(writeBackSource(hub, 'crm').attributes).toEqual(['email_marketing']);
  });
});
