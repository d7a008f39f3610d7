/** Issue 6, webhooks against a real receiver on 127.0.0.1: order under concurrent writers, signatures, retries, pause, redelivery; idempotency keys. */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import { inTransaction } from '../hub/db/database.js';
import { appendChanges } from '../identity-resolution/change-log.js';
import { deliverWebhooks, startWebhookDelivery } from '../hub/webhooks.js';
import type { Hub } from '../hub/sync.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp, seedGolden, seedRun, seedSource, testHub } from './helpers/app.js';
import { waitFor } from './helpers/wait.js';

interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  events: { id: string; type: string; data: { position?: number; customer?: unknown; id?: number; status?: string } }[];
}

let db: TestDatabase;
let hub: Hub;
let app: FastifyInstance;
let server: Server;
let base = '';
const keys = { read: '', steward: '', admin: '' };
const received: Received[] = [];
/** Per path: the statuses to answer, in turn (then 200). */
const answers = new Map<string, number[]>();
let golden = '';

const fast = { retryDelaysMs: [20, 20], intervalMs: 10, timeoutMs: 2_000 };

beforeAll(async () => {
  db = await createTestDatabase();
  hub = testHub(db.pool, []);
  app = await buildTestApp(hub);
  keys.read = await createApiKey(db.pool, 'reader', ['read']);
  keys.steward = await createApiKey(db.pool, 'steward', ['steward']);
  keys.admin = await createApiKey(db.pool, 'admin', ['admin']);
  golden = await seedGolden(db.pool, { data: { given_name: 'Ada' } });
  await seedSource(db.pool, 'shop');
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const path = request.url ?? '';
      const status = answers.get(path)?.shift() ?? 200;
      if (status === 200) received.push({ path, headers: request.headers, body, events: JSON.parse(body).events });
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await app?.close();
  await new Promise((resolve) => server?.close(resolve));
  await db?.drop();
});

async function post(url: string, payload?: object, headers: Record<string, string> = {}, key = keys.admin) {
  const response = await app.inject({ method: 'POST', url, headers: { ...bearer(key), ...headers }, ...(payload ? { payload } : {}) });
  return { status: response.statusCode, headers: response.headers, body: response.json() };
}

async function subscribe(path: string, events?: string[]): Promise<{ id: number; secret: string }> {
  const { status, body } = await post('/v1/webhooks', { url: `${base}${path}`, ...(events ? { events } : {}) });
  expect(status).toBe(201);
  return body;
}

async function unsubscribe(id: number): Promise<void> {
  expect((await app.inject({ method: 'DELETE', url: `/v1/webhooks/${id}`, headers: bearer(keys.admin) })).statusCode).toBe(204);
}

/** Appends changes as the resolver does: positions reserved under the counter lock, held until commit. */
async function change(kind: 'created' | 'updated' = 'updated', pauseMs = 0): Promise<void> {
  await inTransaction(db.pool, async (client) => {
    await appendChanges(client, [{ goldenId: golden, kind, changed: ['given_name'] }], { cause: 'api', actor: 'test' });
    if (pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs));
  });
}

const positionsAt = (path: string) => received.filter((r) => r.path === path).flatMap((r) => r.events.map((event) => event.data.position));

describe('webhook subscriptions', () => {
  it('creates one with its secret shown once, lists and reads it without, deletes it', async () => {
    const created = await post('/v1/webhooks', { url: `${base}/crud`, events: ['customer.created'], description: 'CRM' });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`/v1/webhooks/${created.body.id}`);
    expect(created.body).toEqual({
      id: expect.any(Number),
      url: `${base}/crud`,
      events: ['customer.created'],
      description: 'CRM',
      status: 'active',
      failed_delivery: null,
      created_at: expect.any(String),
      paused_at: null,
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/),
    });
    const list = await app.inject({ method: 'GET', url: '/v1/webhooks', headers: bearer(keys.admin) });
    expect(list.body).not.toContain(created.body.secret);
    const { secret: _secret, ...shown } = created.body;
    expect(list.json().data).toEqual([shown]);
    const one = await app.inject({ method: 'GET', url: `/v1/webhooks/${created.body.id}`, headers: bearer(keys.admin) });
    expect(one.json()).not.toHaveProperty('secret');
    await unsubscribe(created.body.id);
    expect((await app.inject({ method: 'GET', url: `/v1/webhooks/${created.body.id}`, headers: bearer(keys.admin) })).statusCode).toBe(404);
    expect((await app.inject({ method: 'DELETE', url: `/v1/webhooks/${created.body.id}`, headers: bearer(keys.admin) })).statusCode).toBe(404);
  });

  it('validates the subscription', async () => {
    expect((await post('/v1/webhooks', { url: 'ftp://example.com/x' })).body.error.details.field).toBe('body/url');
    expect((await post('/v1/webhooks', { url: `${base}/x`, events: ['customer.deleted'] })).body.error.details.field).toBe('body/events/0');
    expect((await post('/v1/webhooks', { url: `${base}/x`, secret: 'mine' })).body.error.details.field).toBe('body/secret');
  });

  it('is admin only: 401 without a key, 403 for read and steward keys', async () => {
    const routes = [
      { method: 'POST' as const, url: '/v1/webhooks', payload: { url: `${base}/x` } },
      { method: 'GET' as const, url: '/v1/webhooks' },
      { method: 'GET' as const, url: '/v1/webhooks/1' },
      { method: 'GET' as const, url: '/v1/webhooks/1/deliveries' },
      { method: 'DELETE' as const, url: '/v1/webhooks/1' },
      { method: 'POST' as const, url: '/v1/webhooks/1/redeliver' },
      { method: 'POST' as const, url: '/v1/webhooks/1/resume' },
    ];
    for (const route of routes) {
      expect((await app.inject({ ...route })).statusCode, route.url).toBe(401);
      for (const key of [keys.read, keys.steward]) expect((await app.inject({ ...route, headers: bearer(key) })).statusCode, route.url).toBe(403);
    }
  });
});

describe('deliveries', () => {
  it('arrive in change-log order under concurrent writers, each signed with the secret', async () => {
    const { id, secret } = await subscribe('/order');
    const loop = startWebhookDelivery(hub, fast);
    try {
      // Four writers, ten transactions each, holding their positions a random while before committing.
      await Promise.all(Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 10; i++) await change('updated', Math.random() * 15);
      }));
      await waitFor(() => positionsAt('/order').length >= 40, { intervalMs: 10 });
    } finally {
      await loop.stop();
    }
    const positions = positionsAt('/order');
    expect(positions).toHaveLength(40);
    expect(positions).toEqual(Array.from({ length: 40 }, (_, i) => positions[0]! + i));
    for (const delivery of received.filter((r) => r.path === '/order')) {
      const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(delivery.headers['hub-signature']));
      expect(match).not.toBeNull();
      expect(Math.abs(Number(match![1]) - Date.now() / 1000)).toBeLessThan(60);
      expect(match![2]).toBe(createHmac('sha256', secret).update(`${match![1]}.${delivery.body}`).digest('hex'));
      expect(delivery.headers['hub-subscription']).toBe(String(id));
      expect(delivery.headers['hub-delivery']).toMatch(/^\d+$/);
    }
    const first = received.find((r) => r.path === '/order')!.events[0];
    expect(first).toMatchObject({ id: `change:${positions[0]}`, type: 'customer.updated', data: { golden_id: golden, kind: 'updated', customer: { id: golden, attributes: { given_name: 'Ada' } } } });
    await unsubscribe(id);
  });

  it('filter by event type, and deliver failed sync runs as run.failed with the run resource', async () => {
    const { id } = await subscribe('/filtered', ['customer.created', 'run.failed']);
    await change('updated');
    await change('created');
    const runId = await seedRun(db.pool, 'shop', { status: 'failed', error: 'The CSV file is missing.' });
    await seedRun(db.pool, 'shop', { status: 'succeeded' });
    await deliverWebhooks(hub, fast);
    const deliveries = received.filter((r) => r.path === '/filtered');
    expect(deliveries.flatMap((r) => r.events.map((event) => event.type))).toEqual(['customer.created', 'run.failed']);
    expect(deliveries[1].events[0].data).toMatchObject({ id: runId, source: 'shop', status: 'failed', error: 'The CSV file is missing.' });
    await unsubscribe(id);
  });

  it('retry with backoff, then pause showing the failed delivery; redelivery resumes in order', async () => {
    const { id } = await subscribe('/flaky');
    answers.set('/flaky', [500, 503, 500, 500]);
    await change();
    await change();
    for (let i = 0; i < 3; i++) {
      await deliverWebhooks(hub, fast);
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    const paused = (await app.inject({ method: 'GET', url: `/v1/webhooks/${id}`, headers: bearer(keys.admin) })).json();
    expect(paused).toMatchObject({ status: 'paused', paused_at: expect.any(String) });
    expect(paused.failed_delivery).toMatchObject({ status: 'failed', attempts: 3, response_status: 500, error: 'The receiver answered HTTP 500.', event_count: 2 });
    // Paused: new changes wait.
    await change();
    await deliverWebhooks(hub, fast);
    expect(positionsAt('/flaky')).toEqual([]);

    // A manual redelivery that fails keeps it paused; one that succeeds resumes it.
    const failed = await post(`/v1/webhooks/${id}/redeliver`);
    expect(failed).toMatchObject({ status: 200, body: { id: paused.failed_delivery.id, status: 'failed', attempts: 4, response_status: 500 } });
    const redelivered = await post(`/v1/webhooks/${id}/redeliver`);
    expect(redelivered).toMatchObject({ status: 200, body: { status: 'succeeded', attempts: 5, response_status: 200, delivered_at: expect.any(String) } });
    expect((await app.inject({ method: 'GET', url: `/v1/webhooks/${id}`, headers: bearer(keys.admin) })).json()).toMatchObject({ status: 'active', failed_delivery: null });
    await deliverWebhooks(hub, fast);
    const positions = positionsAt('/flaky');
    expect(positions).toHaveLength(3);
    expect(positions).toEqual([positions[0], positions[0]! + 1, positions[0]! + 2]);

    expect((await post(`/v1/webhooks/${id}/redeliver`)).body.error.code).toBe('HUB_ERR_CONFLICT');
    // Any earlier delivery again, by id: the same body, the same event ids.
    const again = await post(`/v1/webhooks/${id}/redeliver`, { delivery_id: paused.failed_delivery.id });
    expect(again.body).toMatchObject({ status: 'succeeded', response_status: 200 });
    const flaky = received.filter((r) => r.path === '/flaky');
    expect(flaky[flaky.length - 1].body).toBe(flaky[0].body);
    const history = (await app.inject({ method: 'GET', url: `/v1/webhooks/${id}/deliveries`, headers: bearer(keys.admin) })).json();
    expect(history.data.map((delivery: { status: string; event_count: number }) => [delivery.status, delivery.event_count])).toEqual([['succeeded', 1], ['succeeded', 2]]);
    await unsubscribe(id);
  });

  it('resume retries the failed delivery with fresh attempts', async () => {
    const { id } = await subscribe('/resume');
    answers.set('/resume', [500, 500, 500]);
    await change();
    for (let i = 0; i < 3; i++) {
      await deliverWebhooks(hub, fast);
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    expect((await app.inject({ method: 'GET', url: `/v1/webhooks/${id}`, headers: bearer(keys.admin) })).json().status).toBe('paused');
    const resumed = await post(`/v1/webhooks/${id}/resume`);
    expect(resumed).toMatchObject({ status: 200, body: { status: 'active', failed_delivery: null } });
    await deliverWebhooks(hub, fast);
    expect(positionsAt('/resume')).toHaveLength(1);
    await unsubscribe(id);
  });
});

describe('Idempotency-Key', () => {
  it('replays the first response to the same key and body, and refuses the key with another body', async () => {
    const body = { url: `${base}/idempotent` };
    const first = await post('/v1/webhooks', body, { 'idempotency-key': 'create-1' });
    expect(first.status).toBe(201);
    const second = await post('/v1/webhooks', body, { 'idempotency-key': 'create-1' });
    expect(second).toMatchObject({ status: 201, body: first.body, headers: { location: first.headers.location, 'idempotent-replayed': 'true' } });
    expect((await app.inject({ method: 'GET', url: '/v1/webhooks', headers: bearer(keys.admin) })).json().data.filter((w: { url: string }) => w.url === body.url)).toHaveLength(1);

    const other = await post('/v1/webhooks', { url: `${base}/elsewhere` }, { 'idempotency-key': 'create-1' });
    expect(other).toMatchObject({ status: 422, body: { error: { code: 'HUB_ERR_IDEMPOTENCY_MISMATCH' } } });
    // Keys belong to an API key: another key's same key is a new request.
    const otherAdmin = await createApiKey(db.pool, 'admin-2', ['admin']);
    const third = await post('/v1/webhooks', body, { 'idempotency-key': 'create-1' }, otherAdmin);
    expect(third.status).toBe(201);
    expect(third.body.id).not.toBe(first.body.id);
    await unsubscribe(first.body.id);
    await unsubscribe(third.body.id);
  });

  it('does not keep a server error or a rejected request: a retry runs again', async () => {
    // No job queue in this app: the sync route answers 503.
    await seedSource(db.pool, 'spare');
    const withSource = await buildTestApp(testHub(db.pool, [{ name: 'spare', connector: 'csv', config: { path: 'x.csv' } }]));
    try {
      for (let i = 0; i < 2; i++) {
        const response = await withSource.inject({ method: 'POST', url: '/v1/sources/spare/sync', headers: { ...bearer(keys.admin), 'idempotency-key': 'sync-1' } });
        expect(response.statusCode).toBe(503);
        expect(response.headers['idempotent-replayed']).toBeUndefined();
      }
    } finally {
      await withSource.close();
    }
    expect((await post('/v1/webhooks', { url: 'nope' }, { 'idempotency-key': 'bad-1' })).status).toBe(400);
    const { rows } = await db.pool.query("select key from idempotency_key where key in ('sync-1', 'bad-1')");
    expect(rows).toEqual([]);
  });

  it('is documented on every POST', async () => {
    const document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    type Operation = { parameters?: { in: string; name: string }[]; responses: Record<string, unknown>; security: Record<string, unknown>[] };
    for (const [path, methods] of Object.entries(document.paths as Record<string, Record<string, Operation>>)) {
      // Keys are kept per API key: routes without one (ingested events and received records, idempotent by their own
      // ids; signing in) have nothing to keep them under.
      if (!methods.post || !methods.post.security.some((scheme) => 'apiKey' in scheme)) continue;
      expect(methods.post.parameters?.some((p) => p.in === 'header' && p.name === 'idempotency-key'), path).toBe(true);
      expect(methods.post.responses['422'], path).toBeDefined();
    }
  });
});
