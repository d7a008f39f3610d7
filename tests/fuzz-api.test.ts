/**
 * Bad input against every route of the OpenAPI document: wrong types, missing and extra fields, huge strings,
 * deep JSON, invalid UTF-8, injection strings, in path parameters, query and body. Every answer must be a 4xx
 * with the error schema, never a 500, and the data must not change.
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../hub/auth.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { startTestHub, syncNow, type TestHub } from './helpers/hub.js';

const RUNS_PER_ROUTE = Number(process.env.HUB_FUZZ_RUNS ?? 50);

/** Tables whose content a bad request must never change. */
const TABLES = [
  'source', 'sync_run', 'stream_state', 'raw_record', 'quarantine', 'canonical_record', 'golden_record', 'cluster_membership', 'attribute_lineage',
  'change_log', 'match_constraint', 'pinned_value', 'webhook_subscription', 'webhook_delivery', 'erasure', 'customer_value', 'write_back_state',
  'write_back_log', 'received_signature',
];

async function snapshot(db: TestDatabase): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  for (const table of TABLES) {
    const { rows } = await db.pool.query(`select count(*)::int as n, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as hash from ${table} t`);
    result[table] = `${rows[0].n}:${rows[0].hash}`;
  }
  return result;
}

const INJECTIONS = [
  "' or 1=1 --",
  "'); drop table golden_record; --",
  '" or ""="',
  '1; select pg_sleep(5)',
  '$1',
  '%s%s%s%n',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  '{{7*7}}',
  '${process.exit(1)}',
  '\u0000',
  '\\x00\\u0000',
  'cus_1\u0000',
  '__proto__',
  'constructor',
  'NaN',
  '-1',
  '1e309',
  '99999999999999999999999',
  '\u202e\ufeff\u200b',
  'null',
];

const text = fc.oneof(
  fc.constantFrom(...INJECTIONS),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('x'.repeat(10_000), 'é'.repeat(70_000)),
);

/** URL-encodes a string; lone surrogates (which encodeURIComponent refuses) and raw invalid UTF-8 bytes go as %XX. */
function encode(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return [...Buffer.from(value, 'latin1')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
  }
}
const INVALID_UTF8 = ['%FF', '%C3%28', '%E2%82', '%F0%28%8C%BC', '%ED%A0%80', '%C0%AF'];
const urlText = fc.oneof({ weight: 4, arbitrary: text.map(encode) }, { weight: 1, arbitrary: fc.constantFrom(...INVALID_UTF8) });

/** Wrong types for any field: numbers where strings go, objects, arrays, nulls, booleans, huge and strange strings. */
const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.constantFrom(null, true, false, [], {}, -1, 0, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER),
  fc.array(text, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), text, { maxKeys: 3 }),
);

function deep(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

interface RouteInfo {
  method: string;
  path: string;
  params: string[];
  queryKeys: string[];
  bodyKeys: string[];
  required: string[];
  hasBody: boolean;
}

type Body = { kind: 'json'; value: unknown } | { kind: 'raw'; payload: string | Buffer; contentType: string };

function bodyArbitrary(route: RouteInfo): fc.Arbitrary<Body> {
  const keys = route.bodyKeys.length ? route.bodyKeys : ['name'];
  return fc.oneof(
    // Not an object at all.
    wrongValue.filter((value) => typeof value !== 'object' || value === null || Array.isArray(value)).map((value): Body => ({ kind: 'json', value })),
    // Known fields with wrong types (and the rest missing).
    fc.record(Object.fromEntries(keys.map((key) => [key, wrongValue])), { requiredKeys: [keys[0]] }).map((value): Body => ({ kind: 'json', value })),
    // Some required fields missing, an extra field added.
    fc.tuple(fc.subarray(route.required), fc.string({ minLength: 1, maxLength: 10 }), wrongValue).map(([present, extra, value]): Body => ({
      kind: 'json',
      value: { ...Object.fromEntries(present.map((key) => [key, 'x'])), [`zz_${extra}`]: value },
    })),
    // Deep JSON, a huge body, invalid UTF-8, bad JSON, the wrong media type.
    fc.constantFrom<Body>(
      { kind: 'raw', payload: deep(5_000), contentType: 'application/json' },
      { kind: 'raw', payload: `{"name":"${'x'.repeat(3_000_000)}"}`, contentType: 'application/json' },
      { kind: 'raw', payload: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]), contentType: 'application/json' },
      { kind: 'raw', payload: '{"a":', contentType: 'application/json' },
      { kind: 'raw', payload: '', contentType: 'application/json' },
      { kind: 'raw', payload: "name=' or 1=1 --", contentType: 'application/x-www-form-urlencoded' },
      { kind: 'raw', payload: '<xml/>', contentType: 'text/xml' },
    ),
    text.map((value): Body => ({ kind: 'raw', payload: JSON.stringify(value), contentType: 'application/json' })),
  );
}

function queryArbitrary(route: RouteInfo, mustBeInvalid: boolean): fc.Arbitrary<string> {
  const known = route.queryKeys.length ? fc.constantFrom(...route.queryKeys) : fc.constant('limit');
  const pair = fc.tuple(fc.oneof(known, fc.string({ minLength: 1, maxLength: 12 }).map((key) => `zz_${encode(key)}`)), urlText);
  const extra = fc.tuple(fc.string({ minLength: 1, maxLength: 12 }).map((key) => `zz_${encode(key)}`), urlText);
  return fc
    .tuple(fc.array(pair, { maxLength: 4 }), mustBeInvalid ? extra.map((entry) => [entry]) : fc.constant([] as [string, string][]))
    .map(([pairs, forced]) => [...pairs, ...forced].map(([key, value]) => `${key}=${value}`).join('&'));
}

function routesOf(document: any): RouteInfo[] {
  const routes: RouteInfo[] = [];
  for (const [path, operations] of Object.entries<any>(document.paths)) {
    for (const [method, operation] of Object.entries<any>(operations)) {
      const parameters: any[] = operation.parameters ?? [];
      const schema = operation.requestBody?.content?.['application/json']?.schema;
      routes.push({
        method: method.toUpperCase(),
        path,
        params: parameters.filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name),
        queryKeys: parameters.filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name),
        bodyKeys: Object.keys(schema?.properties ?? {}),
        required: schema?.required ?? [],
        hasBody: operation.requestBody !== undefined,
      });
    }
  }
  return routes;
}

describe('API fuzz: bad input on every route', () => {
  let db: TestDatabase;
  let hub: TestHub;
  let app: FastifyInstance;
  let admin: string;
  let routes: RouteInfo[];
  beforeAll(async () => {
    db = await createTestDatabase();
    hub = await startTestHub(db);
    await syncNow(hub, 'crm-contacts');
    admin = await createApiKey(db.pool, 'fuzz', ['admin']);
    app = await buildTestApp(hub);
    routes = routesOf(app.swagger());
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await hub?.stop();
    await db?.drop();
  });

  it('covers every route of the OpenAPI document', () => {
    expect(routes.length).toBeGreaterThan(25);
  });

  it('answers every bad request with a 4xx and the error schema, and changes no data', async () => {
    const before = await snapshot(db);
    const failures: string[] = [];
    for (const route of routes) {
      // A request that could be valid is not bad input: a route without path parameters or body always gets an unknown query key.
      const mustBreakQuery = route.params.length === 0 && !route.hasBody;
      const request = fc.record({
        params: fc.tuple(...route.params.map(() => urlText), fc.constant(null)),
        query: queryArbitrary(route, mustBreakQuery),
        body: route.hasBody ? bodyArbitrary(route) : fc.constant(null),
      });
      await fc.assert(
        fc.asyncProperty(request, async ({ params, query, body }) => {
          let url = route.path;
          route.params.forEach((name, i) => (url = url.replace(`{${name}}`, (params[i] as string) || '%20')));
          if (query) url += `?${query}`;
          const headers: Record<string, string> = { ...bearer(admin) };
          let payload: string | Buffer | undefined;
          if (body?.kind === 'json') {
            payload = JSON.stringify(body.value) ?? 'null';
            headers['content-type'] = 'application/json';
          } else if (body?.kind === 'raw') {
            payload = body.payload;
            headers['content-type'] = body.contentType;
          }
          const response = await app.inject({ method: route.method as 'GET', url, headers, payload });
          const ok = response.statusCode >= 400 && response.statusCode < 500;
          let shaped = false;
          try {
            const json = response.json();
            shaped = typeof json?.error?.code === 'string' && typeof json.error.message === 'string' && json.error.code.startsWith('HUB_ERR_');
          } catch {
            shaped = false;
          }
          if (!ok || !shaped) {
            const shown = typeof payload === 'string' ? payload.slice(0, 200) : payload?.toString('hex').slice(0, 200);
            failures.push(`${route.method} ${url.slice(0, 200)} body=${shown} → ${response.statusCode} ${response.body.slice(0, 300)}`);
          }
          return ok && shaped;
        }),
        { numRuns: RUNS_PER_ROUTE, endOnFailure: true, seed: Number(process.env.HUB_FUZZ_SEED ?? 20261123) },
      ).catch((error) => failures.push(`${route.method} ${route.path}: ${(error as Error).message.split('\n')[0]}`));
    }
    expect(failures).toEqual([]);
    expect(await snapshot(db)).toEqual(before);
  }, 120_000);
});
