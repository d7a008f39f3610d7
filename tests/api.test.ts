import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import type PgBoss from 'pg-boss';
import { createApiKey, ensureAdminKey, registerAuth } from '../hub/auth.js';
import { openApiDocument } from '../hub/openapi-document.js';
import { startQueue } from '../hub/queue.js';
import type { Hub } from '../hub/sync.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import {
  bearer,
  buildTestApp,
  seedChange,
  seedGolden,
  seedInteraction,
  seedLineage,
  seedMembership,
  seedQuarantine,
  seedRecord,
  seedRun,
  seedSource,
  testHub,
} from './helpers/app.js';

const SECRET = 'sup3r-secret-value';

const sources = [
  { name: 'shop', connector: 'csv', schedule: '0 * * * *', config: { path: 'shop.csv', password: SECRET } },
  { name: 'crm', connector: 'csv', config: { path: 'crm.csv', token: SECRET } },
  { name: 'fresh', connector: 'csv', config: { path: 'fresh.csv' } },
  // Synced by the authentication tests, so that the others see the runs they expect.
  { name: 'spare', connector: 'csv', config: { path: 'spare.csv' } },
];

let db: TestDatabase;
let boss: PgBoss;
let hub: Hub;
let app: FastifyInstance;
const keys = { read: '', steward: '', admin: '', revoked: '' };
const ids = {
  plain: [] as string[],
  rich: '',
  mergedOnce: '',
  mergedTwice: '',
  retired: '',
  shopRecord: 0,
  crmRecord: 0,
  oldRecord: 0,
  positions: [] as number[],
  run: 0,
  quarantine: { shopRead: 0, shopMap: 0, crmMap: 0 },
};

async function seed(pool: TestDatabase['pool']): Promise<void> {
  await seedSource(pool, 'shop');
  await seedSource(pool, 'crm');
  await seedSource(pool, 'spare');

  // The customer with two current source records, one former one, lineage and interactions.
  ids.rich = await seedGolden(pool, {
    data: { given_name: 'Ada', family_name: 'Lovelace', email: 'ada@example.com', emails: ['ada@example.com', 'ada.l@work.example'], phone: '+4930999', phones: ['+4930999'] },
  });
  ids.shopRecord = await seedRecord(pool, { source: 'shop', externalId: 'S-1', observedAt: '2025-01-01T00:00:00Z' });
  ids.oldRecord = await seedRecord(pool, { source: 'shop', externalId: 'S-OLD', observedAt: '2024-01-01T00:00:00Z' });
  ids.crmRecord = await seedRecord(pool, { source: 'crm', stream: 'contacts', externalId: 'C-1', observedAt: '2025-02-01T00:00:00Z' });
  await seedMembership(pool, ids.shopRecord, ids.rich, { validFrom: '2025-01-02T00:00:00Z', detail: { rule: 'shared_key', links: [] } });
  await seedMembership(pool, ids.crmRecord, ids.rich, { validFrom: '2025-02-02T00:00:00Z', detail: { rule: 'shared_key', links: [{ kind: 'email' }] } });
  await seedMembership(pool, ids.oldRecord, ids.rich, { validFrom: '2024-01-02T00:00:00Z', validTo: '2024-06-01T00:00:00Z' });
  const shop = { rawRecordId: ids.shopRecord, source: 'shop', observedAt: '2025-01-01T00:00:00Z' };
  const crm = { rawRecordId: ids.crmRecord, source: 'crm', observedAt: '2025-02-01T00:00:00Z' };
  await seedLineage(pool, ids.rich, [
    { attribute: 'given_name', value: 'Ada', survived: true, ...crm },
    { attribute: 'given_name', value: 'Adah', survived: false, ...shop },
    { attribute: 'family_name', value: 'Lovelace', survived: true, ...crm },
    { attribute: 'emails', value: 'ada@example.com', survived: true, ...crm },
    { attribute: 'emails', value: 'ada@example.com', survived: false, ...shop },
    { attribute: 'emails', value: 'ada.l@work.example', survived: true, ...shop },
  ]);
  // Two pairs at one time: one to the microsecond (a cursor in milliseconds would lose a row), one exact (the record id decides).
  await seedInteraction(pool, ids.shopRecord, 0, { kind: 'order', occurred_at: '2025-03-01T10:00:00.000100Z', external_id: 'O-1', status: 'paid', amount: 120.5, currency: 'EUR' });
  await seedInteraction(pool, ids.shopRecord, 1, { kind: 'order', occurred_at: '2025-03-03T09:00:00Z', external_id: 'O-2' });
  await seedInteraction(pool, ids.crmRecord, 0, { kind: 'call', occurred_at: '2025-03-01T10:00:00.000200Z', owner: 'Grace', summary: 'Intro call' });
  await seedInteraction(pool, ids.crmRecord, 1, { kind: 'note', occurred_at: '2025-03-03T09:00:00Z', summary: 'Wants a quote' });
  await seedInteraction(pool, ids.crmRecord, 2, { kind: 'email', occurred_at: '2025-03-02T00:00:00Z', thread_id: 't-1' });
  await seedInteraction(pool, ids.oldRecord, 0, { kind: 'ticket', occurred_at: '2025-04-01T00:00:00Z', summary: 'not a member any more' });

  // A chain of two merges ends at the rich customer; one customer was retired.
  ids.mergedTwice = await seedGolden(pool, { status: 'merged', mergedInto: ids.rich });
  ids.mergedOnce = await seedGolden(pool, { status: 'merged', mergedInto: ids.mergedTwice });
  ids.retired = await seedGolden(pool, { status: 'retired' });

  // Twelve plain customers: half updated long ago, half recently.
  for (let i = 0; i < 12; i++) {
    const n = String(i).padStart(2, '0');
    ids.plain.push(
      await seedGolden(pool, {
        data: { given_name: `P${n}`, email: `p${n}@example.com`, emails: [`p${n}@example.com`], phone: `+49301000${n}`, phones: [`+49301000${n}`] },
        createdAt: '2020-01-01T00:00:00Z',
        updatedAt: i < 6 ? '2020-01-01T00:00:00Z' : '2025-06-01T00:00:00Z',
      }),
    );
  }

  for (const [index, kind] of ['created', 'created', 'updated', 'merged', 'retired'].entries()) {
    ids.positions.push(await seedChange(pool, { goldenId: ids.plain[index], kind, changed: kind === 'updated' ? ['email'] : [], detail: kind === 'merged' ? { into: ids.rich } : {} }));
  }

  ids.run = await seedRun(pool, 'shop', { status: 'succeeded', read: 10, created: 8 });
  ids.quarantine.shopRead = await seedQuarantine(pool, { source: 'shop', stage: 'read', reason: 'unterminated quote', line: 7, runId: ids.run });
  ids.quarantine.shopMap = await seedQuarantine(pool, { source: 'shop', stage: 'map', reason: 'email (person.email): not an email', field: 'email', rawRecordId: ids.shopRecord, resolved: true });
  ids.quarantine.crmMap = await seedQuarantine(pool, { source: 'crm', stage: 'map', reason: 'phone (person.phone): not a phone number', field: 'phone', rawRecordId: ids.crmRecord });
}

beforeAll(async () => {
  db = await createTestDatabase();
  await seed(db.pool);
  boss = await startQueue(db.url, () => undefined);
  hub = { ...testHub(db.pool, sources), boss };
  app = await buildTestApp(hub);
  keys.read = await createApiKey(db.pool, 'reader', ['read']);
  keys.steward = await createApiKey(db.pool, 'steward', ['steward']);
  keys.admin = await createApiKey(db.pool, 'admin', ['admin']);
  keys.revoked = await createApiKey(db.pool, 'revoked', ['admin']);
  await db.pool.query('update api_key set revoked_at = now() where name = $1', ['revoked']);
});

afterAll(async () => {
  await app?.close();
  await boss?.stop({ graceful: false, wait: true });
  await db?.drop();
});

async function get(url: string, key: string | undefined = keys.read) {
  const response = await app.inject({ method: 'GET', url, headers: key ? bearer(key) : {} });
  return { status: response.statusCode, headers: response.headers, body: response.json() };
}

describe('health and documents', () => {
  it('answers /health without a key', async () => {
    expect(await get('/health', undefined)).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('serves the Swagger UI without a key', async () => {
    const response = await app.inject({ method: 'GET', url: '/docs/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/text\/html/);
  });

  it('serves /openapi.json listing every route, with the error schema as a component', async () => {
    const { status, body } = await get('/openapi.json', undefined);
    expect(status).toBe(200);
    const operations = Object.entries(body.paths as Record<string, Record<string, { security: unknown[]; responses: Record<string, unknown> }>>).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, operation })),
    );
    expect(operations.map((entry) => entry.route).sort()).toEqual(
      [
        'GET /health',
        'GET /ready',
        'GET /metrics',
        'GET /openapi.json',
        'GET /v1/changes',
        'GET /v1/customers',
        'GET /v1/customers/{id}',
        'GET /v1/customers/{id}/timeline',
        'GET /v1/customers/{id}/explain',
        'GET /v1/match',
        'GET /v1/organisations',
        'GET /v1/organisations/{id}',
        'GET /v1/quarantine',
        'GET /v1/runs/{id}',
        'GET /v1/sources',
        'GET /v1/sources/{name}/runs',
        'POST /v1/sources/{name}/sync',
        'POST /v1/quarantine/{id}/requeue',
        'POST /v1/session',
        'GET /v1/session',
        'DELETE /v1/session',
        'GET /v1/sources/{name}/write-back',
        'PUT /v1/sources/{name}/write-back',
        'GET /v1/lookup',
        'PUT /v1/customers/{id}/consent',
        'GET /v1/webhooks',
        'POST /v1/webhooks',
        'GET /v1/webhooks/{id}',
        'DELETE /v1/webhooks/{id}',
        'GET /v1/webhooks/{id}/deliveries',
        'POST /v1/webhooks/{id}/redeliver',
        'POST /v1/webhooks/{id}/resume',
        'POST /v1/customers/{id}/erase',
        'GET /v1/customers/{id}/export',
        'GET /v1/export/customers',
        'POST /v1/ingest/identify',
        'POST /v1/ingest/track',
        'POST /v1/ingest/page',
        'POST /v1/ingest/group',
        'POST /v1/ingest/alias',
        'POST /v1/ingest/batch',
        'POST /v1/receive/{source}/{stream}',
        'GET /v1/review',
        'GET /v1/review/{id}',
        'POST /v1/review/{id}/decision',
        'POST /v1/customers/{id}/split',
        'POST /v1/customers/merge',
        'PUT /v1/customers/{id}/pins/{attribute}',
        'DELETE /v1/customers/{id}/pins/{attribute}',
        'GET /v1/decisions',
        'POST /v1/decisions/{id}/undo',
        'GET /v1/overview',
      ].sort(),
    );
    expect(body.info.title).toBe('customer-hub');
    expect(body.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(body.components.schemas.HubError.properties.error.required).toEqual(['code', 'message']);
    const errorRef = { content: { 'application/json': { schema: { $ref: '#/components/schemas/HubError' } } } };
    for (const { route, operation } of operations) {
      expect(operation.responses['400'], route).toMatchObject(errorRef);
      if (route.startsWith('POST /v1/ingest/')) {
        expect(operation.security, route).toEqual([{ writeKey: [] }]);
      } else if (route.startsWith('POST /v1/receive/')) {
        expect(operation.security, route).toEqual([{ signature: [] }]);
      } else if (route === 'POST /v1/session') {
        expect(operation.security, route).toEqual([]);
        expect(operation.responses['401'], route).toMatchObject(errorRef);
      } else if (route.includes('/v1/') || route === 'GET /metrics') {
        expect(operation.security, route).toEqual([{ apiKey: [] }, { session: [] }]);
        expect(operation.responses['401'], route).toMatchObject(errorRef);
        expect(operation.responses['403'], route).toMatchObject(errorRef);
      } else {
        expect(operation.security, route).toEqual([]);
      }
    }
  });

  it('builds the same document without a database (what scripts/generate.ts writes)', async () => {
    expect(await openApiDocument()).toEqual((await get('/openapi.json', undefined)).body);
  });
});

describe('authentication', () => {
  const routes: { name: string; method: 'GET' | 'POST'; url: () => string; scope: 'read' | 'admin' }[] = [
    { name: 'GET /v1/customers', method: 'GET', url: () => '/v1/customers', scope: 'read' },
    { name: 'GET /v1/customers/{id}', method: 'GET', url: () => `/v1/customers/${ids.rich}`, scope: 'read' },
    { name: 'GET /v1/customers/{id}/timeline', method: 'GET', url: () => `/v1/customers/${ids.rich}/timeline`, scope: 'read' },
    { name: 'GET /v1/changes', method: 'GET', url: () => '/v1/changes', scope: 'read' },
    { name: 'GET /v1/sources', method: 'GET', url: () => '/v1/sources', scope: 'read' },
    { name: 'GET /v1/runs/{id}', method: 'GET', url: () => `/v1/runs/${ids.run}`, scope: 'read' },
    { name: 'GET /v1/quarantine', method: 'GET', url: () => '/v1/quarantine', scope: 'read' },
    { name: 'POST /v1/sources/{name}/sync', method: 'POST', url: () => '/v1/sources/spare/sync', scope: 'admin' },
  ];

  it.each(routes)('$name: 401 without a key or with a wrong or revoked one; the right scope passes', async (route) => {
    const call = (headers: Record<string, string>) => app.inject({ method: route.method, url: route.url(), headers });
    for (const headers of [{}, bearer('hub_not-a-key'), { authorization: `Basic ${keys.read}` }, bearer(keys.revoked)]) {
      const response = await call(headers);
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('HUB_ERR_UNAUTHENTICATED');
      expect(response.headers['www-authenticate']).toMatch(/^Bearer /);
    }
    const response = await call(bearer(route.scope === 'admin' ? keys.admin : keys.read));
    expect(response.statusCode).toBe(route.method === 'POST' ? 202 : 200);
  });

  it('answers 403 to a read or steward key on an admin route', async () => {
    for (const key of [keys.read, keys.steward]) {
      const response = await app.inject({ method: 'POST', url: '/v1/sources/shop/sync', headers: bearer(key) });
      expect(response.statusCode).toBe(403);
      expect(response.json().error).toEqual({ code: 'HUB_ERR_FORBIDDEN', message: "This API key lacks the 'admin' scope." });
    }
  });

  it('lets admin and steward keys read (admin implies steward implies read)', async () => {
    expect((await get('/v1/changes', keys.steward)).status).toBe(200);
    expect((await get('/v1/changes', keys.admin)).status).toBe(200);
  });

  it('stores keys hashed: the plain key is nowhere in the table', async () => {
    const { rows } = await db.pool.query<{ row: string; key_hash: string }>("select row_to_json(k)::text as row, key_hash from api_key k where name = 'reader'");
    expect(rows).toHaveLength(1);
    expect(keys.read).toMatch(/^hub_[A-Za-z0-9_-]{43}$/);
    expect(rows[0].key_hash).toBe(createHash('sha256').update(keys.read).digest('hex'));
    expect(rows[0].row).not.toContain(keys.read.slice(4));
  });

  it('records last_used_at, at most once a minute per key', async () => {
    const key = await createApiKey(db.pool, 'usage', ['read']);
    const lastUsed = async () => (await db.pool.query<{ at: Date | null }>("select last_used_at as at from api_key where name = 'usage'")).rows[0].at;
    expect(await lastUsed()).toBeNull();
    await get('/v1/changes', key);
    const first = await lastUsed();
    expect(first).toBeInstanceOf(Date);
    await get('/v1/changes', key);
    expect(await lastUsed()).toEqual(first);
    await db.pool.query("update api_key set last_used_at = now() - interval '2 minutes' where name = 'usage'");
    // The hub reads a key again once its cached row is older than five seconds.
    const now = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(now + 5_001);
    try {
      await get('/v1/changes', key);
    } finally {
      clock.mockRestore();
    }
    expect((await lastUsed())!.getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('refuses at startup a route that declares no scope', async () => {
    const bare = Fastify();
    registerAuth(bare, db.pool);
    expect(() => bare.get('/open-by-accident', async () => ({}))).toThrow(/GET \/open-by-accident declares no valid config\.scope/);
    expect(() => bare.get('/typo', { config: { scope: 'reed' as 'read' } }, async () => ({}))).toThrow(/declares no valid config\.scope/);
    await bare.close().catch(() => undefined);
  });

  it('answers an unknown route with the error schema', async () => {
    const { status, body } = await get('/v1/nothing-here', undefined);
    expect(status).toBe(404);
    expect(body.error.code).toBe('HUB_ERR_ROUTE_NOT_FOUND');
  });
});

describe('request validation', () => {
  it.each([
    ['/v1/customers?limit=501', 'querystring/limit', 'querystring/limit must be <= 500'],
    ['/v1/customers?limit=0', 'querystring/limit', 'querystring/limit must be >= 1'],
    ['/v1/customers?limit=ten', 'querystring/limit', 'querystring/limit must be integer'],
    ['/v1/customers?cursor=not%20base64!', 'querystring/cursor', 'querystring/cursor must match pattern "^[A-Za-z0-9_-]{1,400}$"'],
    ['/v1/customers?cursor=bm9wZQ', 'querystring/cursor', 'querystring/cursor is not a cursor this API returned'],
    ['/v1/customers?updated_since=yesterday', 'querystring/updated_since', 'querystring/updated_since must match format "date-time"'],
    ['/v1/customers?emial=a@b.c', 'querystring/emial', 'querystring/emial is not allowed'],
    ['/v1/customers/bob', 'params/id', 'params/id must match pattern "^cus_[0-9]{1,18}$"'],
    ['/v1/customers/cus_1/timeline?cursor=WyJ4Il0', 'querystring/cursor', 'querystring/cursor is not a cursor this API returned'],
    ['/v1/changes?after=-1', 'querystring/after', 'querystring/after must be >= 0'],
    ['/v1/runs/abc', 'params/id', 'params/id must be integer'],
    ['/v1/quarantine?stage=parse', 'querystring/stage', 'querystring/stage must be equal to one of the allowed values'],
    ['/v1/sources?verbose=true', 'querystring/verbose', 'querystring/verbose is not allowed'],
  ])('%s → 400 naming %s', async (url, field, message) => {
    const { status, body } = await get(url);
    expect(status).toBe(400);
    expect(body).toEqual({ error: { code: 'HUB_ERR_VALIDATION', message, details: { field } } });
  });

  it('answers an internal error with HUB_ERR_INTERNAL and nothing of the cause', async () => {
    const query = db.pool.query.bind(db.pool);
    const spy = vi.spyOn(db.pool, 'query').mockImplementation(((statement: { text?: string }, ...rest: unknown[]) => {
      if (typeof statement === 'object' && statement.text?.includes('from change_log')) return Promise.reject(new Error(`password=${SECRET} refused`));
      return (query as (...args: unknown[]) => unknown)(statement, ...rest);
    }) as typeof db.pool.query);
    try {
      const response = await app.inject({ method: 'GET', url: '/v1/changes', headers: bearer(keys.read) });
      expect(response.statusCode).toBe(500);
      expect(response.json().error.code).toBe('HUB_ERR_INTERNAL');
      expect(response.body).not.toContain(SECRET);
      expect(response.body).not.toMatch(/at .*\.ts:\d+/);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('GET /v1/customers', () => {
  const activeInOrder = () => [ids.rich, ...ids.plain];

  it('pages through every active customer once, in a stable order', async () => {
    const seen: string[] = [];
    const pageSizes: number[] = [];
    let url = '/v1/customers?limit=5';
    for (let pages = 0; pages < 10; pages++) {
      const { status, body } = await get(url);
      expect(status).toBe(200);
      seen.push(...body.data.map((customer: { id: string }) => customer.id));
      pageSizes.push(body.data.length);
      if (body.next_cursor === null) break;
      url = `/v1/customers?limit=5&cursor=${body.next_cursor}`;
    }
    expect(pageSizes).toEqual([5, 5, 3]);
    expect(seen).toEqual(activeInOrder());
  });

  it('answers customer summaries', async () => {
    const { body } = await get('/v1/customers?limit=1');
    expect(body.data).toEqual([
      {
        id: ids.rich,
        attributes: { given_name: 'Ada', family_name: 'Lovelace', email: 'ada@example.com', emails: ['ada@example.com', 'ada.l@work.example'], phone: '+4930999', phones: ['+4930999'] },
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    ]);
    expect(body.next_cursor).toEqual(expect.any(String));
  });

  it('filters by email (any case, any of the emails)', async () => {
    expect((await get('/v1/customers?email=P03@Example.COM')).body.data.map((c: { id: string }) => c.id)).toEqual([ids.plain[3]]);
    expect((await get('/v1/customers?email=ada.l@work.example')).body.data.map((c: { id: string }) => c.id)).toEqual([ids.rich]);
    expect((await get('/v1/customers?email=nobody@example.com')).body).toEqual({ data: [], next_cursor: null });
  });

  it('filters by phone in E.164, with the + encoded or not', async () => {
    expect((await get('/v1/customers?phone=%2B4930100007')).body.data.map((c: { id: string }) => c.id)).toEqual([ids.plain[7]]);
    expect((await get('/v1/customers?phone=+4930100007')).body.data.map((c: { id: string }) => c.id)).toEqual([ids.plain[7]]);
    expect((await get('/v1/customers?phone=%2B4930100099')).body.data).toEqual([]);
  });

  it('filters by updated_since, and pages within the filter', async () => {
    const first = await get('/v1/customers?updated_since=2025-01-01T00:00:00Z&limit=4');
    const second = await get(`/v1/customers?updated_since=2025-01-01T00:00:00Z&limit=4&cursor=${first.body.next_cursor}`);
    expect([...first.body.data, ...second.body.data].map((c: { id: string }) => c.id)).toEqual([ids.rich, ...ids.plain.slice(6)]);
    expect(second.body.next_cursor).toBeNull();
  });
});

describe('GET /v1/customers/{id}', () => {
  it('answers the golden record with lineage, alternates and current source records', async () => {
    const { status, body } = await get(`/v1/customers/${ids.rich}`);
    expect(status).toBe(200);
    const entry = (value: string, source: 'shop' | 'crm') => ({
      value,
      source,
      raw_record_id: source === 'shop' ? ids.shopRecord : ids.crmRecord,
      observed_at: source === 'shop' ? '2025-01-01T00:00:00.000Z' : '2025-02-01T00:00:00.000Z',
    });
    expect(body).toEqual({
      id: ids.rich,
      status: 'active',
      attributes: { given_name: 'Ada', family_name: 'Lovelace', email: 'ada@example.com', emails: ['ada@example.com', 'ada.l@work.example'], phone: '+4930999', phones: ['+4930999'] },
      lineage: {
        given_name: [entry('Ada', 'crm')],
        family_name: [entry('Lovelace', 'crm')],
        emails: [entry('ada@example.com', 'crm'), entry('ada.l@work.example', 'shop')],
      },
      alternates: { given_name: [entry('Adah', 'shop')], emails: [entry('ada@example.com', 'shop')] },
      source_records: [
        { raw_record_id: ids.shopRecord, source: 'shop', stream: 'customers', external_id: 'S-1', since: '2025-01-02T00:00:00.000Z', cause: 'rule', detail: { rule: 'shared_key', links: [] }, omitted_values: [] },
        { raw_record_id: ids.crmRecord, source: 'crm', stream: 'contacts', external_id: 'C-1', since: '2025-02-02T00:00:00.000Z', cause: 'rule', detail: { rule: 'shared_key', links: [{ kind: 'email' }] }, omitted_values: [] },
      ],
      value: expect.objectContaining({ segment: expect.any(String) }),
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });
  });

  it('redirects a merged id with 308 to the end of its merge chain', async () => {
    for (const merged of [ids.mergedOnce, ids.mergedTwice]) {
      const { status, headers, body } = await get(`/v1/customers/${merged}`);
      expect(status).toBe(308);
      expect(headers.location).toBe(`/v1/customers/${ids.rich}`);
      expect(body).toEqual({ merged_into: ids.rich });
    }
    const followed = await get(`/v1/customers/${ids.mergedOnce}`);
    expect((await get(String(followed.headers.location))).body.id).toBe(ids.rich);
  });

  it('answers 410 for a retired id and 404 for an unknown one', async () => {
    expect(await get(`/v1/customers/${ids.retired}`)).toMatchObject({ status: 410, body: { error: { code: 'HUB_ERR_GONE' } } });
    expect(await get('/v1/customers/cus_999999')).toMatchObject({
      status: 404,
      body: { error: { code: 'HUB_ERR_NOT_FOUND', message: "There is no customer 'cus_999999'." } },
    });
  });
});

describe('GET /v1/customers/{id}/timeline', () => {
  const summaryOf = (item: { kind: string; source_record: { external_id: string } }) => `${item.kind}@${item.source_record.external_id}`;

  it('lists the interactions of current members, newest first, over pages', async () => {
    const seen: { kind: string; source_record: { external_id: string } }[] = [];
    let url = `/v1/customers/${ids.rich}/timeline?limit=2`;
    for (let pages = 0; pages < 10; pages++) {
      const { status, body } = await get(url);
      expect(status).toBe(200);
      expect(body.data.length).toBeLessThanOrEqual(2);
      seen.push(...body.data);
      if (body.next_cursor === null) break;
      url = `/v1/customers/${ids.rich}/timeline?limit=2&cursor=${body.next_cursor}`;
    }
    // Ties on occurred_at: the higher record id (crm, stored later) first. The former member's ticket is absent.
    expect(seen.map(summaryOf)).toEqual(['note@C-1', 'order@S-1', 'email@C-1', 'call@C-1', 'order@S-1']);
  });

  it('answers each interaction with its source record', async () => {
    const { body } = await get(`/v1/customers/${ids.rich}/timeline?limit=10`);
    expect(body.data[4]).toEqual({
      kind: 'order',
      occurred_at: '2025-03-01T10:00:00.000Z',
      external_id: 'O-1',
      status: 'paid',
      amount: 120.5,
      currency: 'EUR',
      source_record: { id: ids.shopRecord, source: 'shop', stream: 'customers', external_id: 'S-1' },
    });
    expect(body.data[3]).toMatchObject({ kind: 'call', owner: 'Grace', summary: 'Intro call' });
    expect(body.next_cursor).toBeNull();
  });

  it('redirects a merged id with 308, keeping the query', async () => {
    const { status, headers } = await get(`/v1/customers/${ids.mergedOnce}/timeline?limit=2`);
    expect(status).toBe(308);
    expect(headers.location).toBe(`/v1/customers/${ids.rich}/timeline?limit=2`);
  });
});

describe('GET /v1/changes', () => {
  it('answers the changes after a position, in position order', async () => {
    const [, second, third, fourth, fifth] = ids.positions;
    const page = await get(`/v1/changes?after=${second}&limit=2`);
    expect(page.body.data.map((change: { position: number }) => change.position)).toEqual([third, fourth]);
    expect(page.body.next_after).toBe(fourth);
    expect(page.body.data[0]).toEqual({
      position: third,
      golden_id: ids.plain[2],
      kind: 'updated',
      changed: ['email'],
      detail: {},
      cause: 'run',
      cause_id: '1',
      actor: 'source:shop',
      created_at: expect.any(String),
      customer: expect.objectContaining({ id: ids.plain[2] }),
    });
    const rest = await get(`/v1/changes?after=${page.body.next_after}`);
    expect(rest.body.data.map((change: { position: number; detail: unknown }) => [change.position, change.detail])).toEqual([[fifth, {}]]);
    expect(await get(`/v1/changes?after=${fifth}`)).toMatchObject({ status: 200, body: { data: [], next_after: fifth } });
  });
});

describe('sources, runs and quarantine', () => {
  it('lists the configured sources with counts, never their config', async () => {
    const response = await app.inject({ method: 'GET', url: '/v1/sources', headers: bearer(keys.read) });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain(SECRET);
    expect(response.body).not.toContain('"config"');
    const body = response.json();
    expect(body.data.map((source: { name: string }) => source.name)).toEqual(['shop', 'crm', 'fresh', 'spare']);
    expect(body.data[0]).toMatchObject({ name: 'shop', connector: 'csv', schedule: '0 * * * *', records: 2, quarantined: 1 });
    expect(body.data[0].last_run).toMatchObject({ id: ids.run, status: 'succeeded', read: 10, created: 8, error: null });
    expect(body.data[2]).toEqual({ name: 'fresh', connector: 'csv', schedule: null, next_run_at: null, last_run: null, records: 0, quarantined: 0, records_with_omitted_values: 0 });
  });

  it('queues a sync once: a second request while it is queued answers the same run', async () => {
    const first = await app.inject({ method: 'POST', url: '/v1/sources/crm/sync', headers: bearer(keys.admin) });
    expect(first.statusCode).toBe(202);
    const { run_id: runId, queued } = first.json();
    expect(queued).toBe(true);
    expect(first.headers.location).toBe(`/v1/runs/${runId}`);
    const second = await app.inject({ method: 'POST', url: '/v1/sources/crm/sync', headers: bearer(keys.admin) });
    expect(second.statusCode).toBe(202);
    expect(second.json()).toEqual({ run_id: runId, queued: false });
    expect(await get(`/v1/runs/${runId}`)).toMatchObject({ status: 200, body: { id: runId, source: 'crm', status: 'queued', trigger: 'api', started_at: null } });
  });

  it('answers 404 for an unknown source and 503 without a job queue', async () => {
    expect(await app.inject({ method: 'POST', url: '/v1/sources/nope/sync', headers: bearer(keys.admin) })).toMatchObject({ statusCode: 404 });
    const withoutQueue = await buildTestApp(testHub(db.pool, sources));
    try {
      const response = await withoutQueue.inject({ method: 'POST', url: '/v1/sources/shop/sync', headers: bearer(keys.admin) });
      expect(response.statusCode).toBe(503);
      expect(response.json().error.code).toBe('HUB_ERR_UNAVAILABLE');
    } finally {
      await withoutQueue.close();
    }
  });

  it('answers a run, and 404 for an unknown one', async () => {
    const { status, body } = await get(`/v1/runs/${ids.run}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      id: ids.run,
      source: 'shop',
      status: 'succeeded',
      trigger: 'cli',
      read: 10,
      created: 8,
      updated: 0,
      unchanged: 0,
      quarantined: 0,
      skipped: 0,
      deleted: 0,
      with_omitted_values: 0,
      progress: { stream: 'customers', done: 10 },
      error: null,
      queued_at: expect.any(String),
      started_at: expect.any(String),
      finished_at: expect.any(String),
    });
    expect(await get('/v1/runs/999999')).toMatchObject({ status: 404, body: { error: { code: 'HUB_ERR_NOT_FOUND', message: "There is no run '999999'." } } });
  });

  it('lists quarantine entries newest first, filtered and paged', async () => {
    const { shopRead, shopMap, crmMap } = ids.quarantine;
    const idsOf = async (query: string) => (await get(`/v1/quarantine${query}`)).body.data.map((entry: { id: number }) => entry.id);
    expect(await idsOf('')).toEqual([crmMap, shopMap, shopRead]);
    expect(await idsOf('?source=shop')).toEqual([shopMap, shopRead]);
    expect(await idsOf('?open=true')).toEqual([crmMap, shopRead]);
    expect(await idsOf('?stage=map&open=false')).toEqual([shopMap]);
    const first = await get('/v1/quarantine?limit=2');
    expect(first.body.data.map((entry: { id: number }) => entry.id)).toEqual([crmMap, shopMap]);
    const second = await get(`/v1/quarantine?limit=2&cursor=${first.body.next_cursor}`);
    expect(second.body).toMatchObject({ data: [{ id: shopRead }], next_cursor: null });
    expect(second.body.data[0]).toEqual({
      id: shopRead,
      source: 'shop',
      stream: 'customers',
      external_id: null,
      line: 7,
      field: null,
      reason: 'unterminated quote',
      stage: 'read',
      payload: { raw: 'unterminated quote' },
      raw_record_id: null,
      run_id: ids.run,
      created_at: expect.any(String),
      resolved_at: null,
    });
  });
});

describe('ensureAdminKey', () => {
  let empty: TestDatabase;
  beforeAll(async () => {
    empty = await createTestDatabase();
  });
  afterAll(() => empty.drop());

  it('creates an admin key on an empty table once, and returns it once', async () => {
    const first = await ensureAdminKey(empty.pool);
    expect(first.created).toBe(true);
    expect(first.key).toMatch(/^hub_/);
    expect(await ensureAdminKey(empty.pool)).toEqual({ created: false });
    const { rows } = await empty.pool.query<{ scopes: string[]; key_hash: string }>('select scopes, key_hash from api_key');
    expect(rows).toEqual([{ scopes: ['admin'], key_hash: createHash('sha256').update(first.key!).digest('hex') }]);
  });

  it('honours HUB_ADMIN_KEY: its hash gets the admin scope, and the key works', async () => {
    const envKey = 'env-admin-key-0123456789abcdef';
    expect(await ensureAdminKey(empty.pool, envKey)).toEqual({ created: true });
    expect(await ensureAdminKey(empty.pool, envKey)).toEqual({ created: false });
    const { rows } = await empty.pool.query('select scopes from api_key where key_hash = $1', [createHash('sha256').update(envKey).digest('hex')]);
    expect(rows).toEqual([{ scopes: ['admin'] }]);
    const envApp = await buildTestApp(testHub(empty.pool, sources));
    try {
      // 503 (no job queue here) means the key passed the admin check.
      expect((await envApp.inject({ method: 'POST', url: '/v1/sources/shop/sync', headers: bearer(envKey) })).statusCode).toBe(503);
      expect((await envApp.inject({ method: 'POST', url: '/v1/sources/shop/sync', headers: bearer(`${envKey}x`) })).statusCode).toBe(401);
    } finally {
      await envApp.close();
    }
  });

  it('refuses a short HUB_ADMIN_KEY', async () => {
    await expect(ensureAdminKey(empty.pool, 'short')).rejects.toThrow(/at least 20 characters/);
  });
});
