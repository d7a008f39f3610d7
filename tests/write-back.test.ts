/**
 * Write-back end to end on a real database and job queue, the vendor's HTTP replayed with nock: a plan from
 * golden differences, a job that writes and logs, echo suppression after the value is read back, consent
 * entering through the hub source and written to Shopify, and the kill switch.
 */
import nock from 'nock';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { checkConfig } from '../hub/config.js';
import { recordConsent } from '../hub/push.js';
import { createApiKeyWithId } from '../hub/auth.js';
import { executeWriteBackJob, planWriteBack, runWriteBackCycle, WRITE_BACK_QUEUE, type WriteBackJob } from '../hub/write-back.js';
import { consentUpdateMutation, customerUpdateMutation } from '../connectors/shopify/write-back.js';
import { bodies } from '../connectors/kit/testing.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { goldenOf } from './helpers/pipeline.js';

const shop = 'https://acme.myshopify.com';
const path = '/admin/api/2025-01/graphql.json';

function customersPage(node: Record<string, unknown>) {
  return { data: { customers: { pageInfo: { hasNextPage: false, endCursor: null }, nodes: [node] } } };
}
const bob = {
  id: 'gid://shopify/Customer/207119551',
  legacyResourceId: '207119551',
  firstName: 'Bob',
  lastName: 'Norman',
  email: 'bob.norman@mail.example.com',
  phone: '+16136120707',
  updatedAt: '2024-05-02T10:15:00Z',
  emailMarketingConsent: { marketingState: 'SUBSCRIBED', marketingOptInLevel: 'SINGLE_OPT_IN', consentUpdatedAt: '2024-04-30T12:00:00Z' },
  defaultAddress: null,
};
const ok = (name: string) => ({ data: { [name]: { customer: { id: bob.id }, userErrors: [] } } });

let db: TestDatabase;
let hub: TestHub;

beforeAll(async () => {
  nock.disableNetConnect();
  db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'write-back-'));
  // The list (source A) knows Bob by his phone, with a newer email: the golden email becomes the list's.
  await writeFile(join(dir, 'list.csv'), 'id,email,phone\nc1,bob@new.example.com,+16136120707\n');
  const config = checkConfig(
    {
      // The deterministic matcher joins Bob by the phone alone; the probabilistic one sends a shared phone with
      // different emails (an office line?) to the steward's review queue instead.
      resolution: { matcher: 'deterministic' },
      sources: [
        { name: 'list', connector: 'csv', config: { path: 'list.csv', id_column: 'id' } },
        {
          name: 'shop',
          connector: 'shopify',
          // No deletion sweeps: the fake store does not list ids (sweeps: connectors/odoo, connectors/shopify, tests/deletions).
          config: { shop: 'acme', access_token: 'shpat_test', streams: ['customers'], deletion_sweep_hours: 0 },
          write_back: { enabled: true, attributes: { email: true, email_marketing: true, phone: true } },
        },
      ],
    },
    join(dir, 'hub.config.yaml'),
  );
  hub = await startTestHub(db, undefined, config);
});
afterEach(() => nock.cleanAll());
afterAll(async () => {
  nock.enableNetConnect();
  await hub?.stop();
  await db?.drop();
});

/** Plans a cycle and executes its jobs here, as the worker would. */
async function cycle(): Promise<{ jobs: number; results: Awaited<ReturnType<typeof executeWriteBackJob>>[] }> {
  const planned = await runWriteBackCycle(hub, 'shop');
  const jobs = (await hub.boss.fetch<WriteBackJob>(WRITE_BACK_QUEUE, { batchSize: 10 })) ?? [];
  const results = [];
  for (const job of jobs) {
    results.push(await executeWriteBackJob(hub, job.data, job.id));
    await hub.boss.complete(WRITE_BACK_QUEUE, job.id);
  }
  expect(jobs).toHaveLength(planned.jobs);
  return { jobs: jobs.length, results };
}

describe('write-back', () => {
  it('plans only differences, writes them in a job with a log entry, and does not loop once the sync reads them back', async () => {
    nock(shop).post(path).reply(200, customersPage(bob));
    expect((await syncNow(hub, 'shop')).status).toBe('succeeded');
    expect((await syncNow(hub, 'list')).status).toBe('succeeded');
    const goldenId = (await goldenOf(db.pool, 'shop', '207119551'))!;
    expect(await goldenOf(db.pool, 'list', 'c1')).toBe(goldenId);

    // The dry run: the list's newer email goes to the shop; phone and consent already agree.
    const dry = await planWriteBack(hub, 'shop');
    expect(dry.writes.flatMap((write) => write.items)).toEqual([
      { goldenId, rawRecordId: expect.any(Number), externalId: '207119551', attribute: 'email', from: 'bob.norman@mail.example.com', to: 'bob@new.example.com' },
    ]);
    expect((await db.pool.query('select count(*)::int as n from write_back_log')).rows[0].n).toBe(0);

    const sent = bodies();
    const scope = nock(shop).post(path, sent.match).reply(200, ok('customerUpdate'));
    const { jobs, results } = await cycle();
    expect(jobs).toBe(1);
    expect(results).toEqual([{ written: 1, failed: 0, disabled: false }]);
    expect(scope.isDone()).toBe(true);
    expect(sent.seen).toEqual([{ query: customerUpdateMutation, variables: { input: { id: bob.id, email: 'bob@new.example.com' } } }]);
    const { rows: log } = await db.pool.query('select source, external_id, golden_id, request, outcome, error from write_back_log');
    expect(log).toEqual([{ source: 'shop', external_id: '207119551', golden_id: goldenId, request: { email: 'bob@new.example.com' }, outcome: 'ok', error: null }]);

    // Written but not yet read back: nothing to write again.
    expect((await planWriteBack(hub, 'shop')).writes).toEqual([]);

    // The next sync reads the written value back (Shopify moved updatedAt): an echo, no new write.
    nock(shop).post(path).reply(200, customersPage({ ...bob, email: 'bob@new.example.com', updatedAt: '2025-06-01T00:00:00Z' }));
    expect((await syncNow(hub, 'shop')).status).toBe('succeeded');
    expect((await planWriteBack(hub, 'shop')).writes).toEqual([]);
    expect(await cycle()).toEqual({ jobs: 0, results: [] });
  });

  it('an opt-out through the hub source reaches Shopify in one cycle, with the decision time; its echo changes nothing', async () => {
    const goldenId = (await goldenOf(db.pool, 'shop', '207119551'))!;
    const at = new Date('2025-07-01T09:00:00Z');
    await recordConsent(hub, goldenId, 'opt_out', 'test', at);

    const sent = bodies();
    nock(shop).post(path, sent.match).reply(200, ok('customerEmailMarketingConsentUpdate'));
    expect((await cycle()).results).toEqual([{ written: 1, failed: 0, disabled: false }]);
    expect(sent.seen).toEqual([
      {
        query: consentUpdateMutation,
        variables: { input: { customerId: bob.id, emailMarketingConsent: { marketingState: 'UNSUBSCRIBED', marketingOptInLevel: 'SINGLE_OPT_IN', consentUpdatedAt: at.toISOString() } } },
      },
    ]);

    const { rows: before } = await db.pool.query('select data from golden_record where id = $1', [goldenId]);
    nock(shop)
      .post(path)
      .reply(200, customersPage({ ...bob, email: 'bob@new.example.com', updatedAt: '2025-07-01T09:00:05Z', emailMarketingConsent: { marketingState: 'UNSUBSCRIBED', marketingOptInLevel: 'SINGLE_OPT_IN', consentUpdatedAt: at.toISOString() } }));
    expect((await syncNow(hub, 'shop')).status).toBe('succeeded');
    // The golden consent is still the same decision (the hub's), and nothing is written back.
    const { rows: after } = await db.pool.query('select data from golden_record where id = $1', [goldenId]);
    expect(after[0].data.email_marketing).toEqual(before[0].data.email_marketing);
    expect(await cycle()).toEqual({ jobs: 0, results: [] });
  });

  it('the kill switch (API, over the configuration) stops every write; the changes wait and go when it is on again', async () => {
    const goldenId = (await goldenOf(db.pool, 'shop', '207119551'))!;
    const { key } = await createApiKeyWithId(db.pool, 'admin', ['admin']);
    const { key: readKey } = await createApiKeyWithId(db.pool, 'reader', ['read']);
    const app = await buildTestApp(hub);
    try {
      expect((await app.inject({ method: 'PUT', url: '/v1/sources/shop/write-back', headers: bearer(readKey), payload: { enabled: false } })).statusCode).toBe(403);
      expect((await app.inject({ method: 'PUT', url: '/v1/sources/list/write-back', headers: bearer(key), payload: { enabled: false } })).statusCode).toBe(404);
      const off = await app.inject({ method: 'PUT', url: '/v1/sources/shop/write-back', headers: bearer(key), payload: { enabled: false } });
      expect(off.statusCode).toBe(200);
      expect(off.json()).toMatchObject({ source: 'shop', enabled: false, configured: true, override: false });

      await recordConsent(hub, goldenId, 'opt_in', 'test', new Date('2025-08-01T00:00:00Z'));
      // Nothing planned or written while off (nock would refuse any request); the dry run still shows it.
      expect(await cycle()).toEqual({ jobs: 0, results: [] });
      const pending = await planWriteBack(hub, 'shop');
      expect(pending.status.enabled).toBe(false);
      expect(pending.writes.flatMap((write) => write.items.map((item) => [item.attribute, item.from, item.to]))).toEqual([
        ['email_marketing', 'opt_out', { status: 'opt_in', at: '2025-08-01T00:00:00.000Z' }],
      ]);

      // A job queued before the switch went off writes nothing and hands its records back to planning.
      await app.inject({ method: 'PUT', url: '/v1/sources/shop/write-back', headers: bearer(key), payload: { enabled: true } });
      const planned = await runWriteBackCycle(hub, 'shop');
      expect(planned.jobs).toBe(1);
      await app.inject({ method: 'PUT', url: '/v1/sources/shop/write-back', headers: bearer(key), payload: { enabled: false } });
      const [job] = (await hub.boss.fetch<WriteBackJob>(WRITE_BACK_QUEUE))!;
      expect(await executeWriteBackJob(hub, job.data, job.id)).toEqual({ written: 0, failed: 0, disabled: true });

      const on = await app.inject({ method: 'PUT', url: '/v1/sources/shop/write-back', headers: bearer(key), payload: { enabled: true } });
      expect(on.json()).toMatchObject({ enabled: true, override: true });
      const sent = bodies();
      nock(shop).post(path, sent.match).reply(200, ok('customerEmailMarketingConsentUpdate'));
      expect((await cycle()).results).toEqual([{ written: 1, failed: 0, disabled: false }]);
      expect(sent.seen).toMatchObject([{ variables: { input: { emailMarketingConsent: { marketingState: 'SUBSCRIBED' } } } }]);
    } finally {
      await app.close();
    }
  });

  it('a refused write is logged with its error and planned again', async () => {
    const goldenId = (await goldenOf(db.pool, 'shop', '207119551'))!;
    await recordConsent(hub, goldenId, 'opt_out', 'test', new Date('2025-09-01T00:00:00Z'));
    nock(shop)
      .post(path)
      .reply(200, { data: { customerEmailMarketingConsentUpdate: { customer: null, userErrors: [{ field: ['input', 'customerId'], message: 'Customer does not exist' }] } } });
    expect((await cycle()).results).toEqual([{ written: 0, failed: 1, disabled: false }]);
    const { rows } = await db.pool.query('select outcome, error from write_back_log order by id desc limit 1');
    expect(rows[0]).toEqual({ outcome: 'error', error: 'shopify: customerEmailMarketingConsentUpdate of customer 207119551 was refused: input.customerId: Customer does not exist' });
    expect((await planWriteBack(hub, 'shop')).writes).toHaveLength(1);
    nock(shop).post(path).reply(200, ok('customerEmailMarketingConsentUpdate'));
    expect((await cycle()).results).toEqual([{ written: 1, failed: 0, disabled: false }]);
  });
});
