/** The signed webhook receiver: signature, timestamp window, replay, body checks, then the record's path into a golden record. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { checkConfig } from '../../hub/config.js';
import { silentLogger } from '../../hub/log.js';
import { registerSources, type Hub } from '../../hub/sync.js';
import { createTestDatabase, type TestDatabase } from '../../tests/helpers/db.js';
import { buildTestApp } from '../../tests/helpers/app.js';
import { goldenOf } from '../../tests/helpers/pipeline.js';
import { sign, verify } from './signature.js';

const SECRET = 'whsec_0123456789abcdef';

describe('webhook receiver', () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  const now = () => Math.floor(Date.now() / 1000);
  const post = (url: string, body: string, options: { timestamp?: number; secret?: string; signature?: string; contentType?: string } = {}) => {
    const timestamp = options.timestamp ?? now();
    return app.inject({
      method: 'POST',
      url,
      headers: {
        'content-type': options.contentType ?? 'application/json',
        'x-hub-timestamp': String(timestamp),
        'x-hub-signature': options.signature ?? sign(options.secret ?? SECRET, timestamp, body),
      },
      payload: body,
    });
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const config = checkConfig(
      {
        sources: [
          { name: 'forms', connector: 'webhook', config: { secret: '${FORMS_SECRET}', streams: ['records'], tolerance_seconds: 60 } },
          { name: 'shop', connector: 'csv', config: { path: 'x.csv' } },
        ],
      },
      'test.yaml',
      { FORMS_SECRET: SECRET },
    );
    const hub: Hub = { pool: db.pool, config, log: silentLogger };
    await registerSources(db.pool, config);
    app = await buildTestApp(hub);
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('stores a correctly signed record, and a later one with the same id updates it', async () => {
    const first = await post('/v1/receive/forms/records', JSON.stringify({ id: 'r1', email: 'Ada@Example.com', first_name: 'Ada' }));
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ external_id: 'r1', status: 'created' });
    expect(await goldenOf(db.pool, 'forms', 'r1')).toMatch(/^cus_/);
    const second = await post('/v1/receive/forms/records', JSON.stringify({ id: 'r1', email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace' }));
    expect(second.json()).toEqual({ external_id: 'r1', status: 'updated' });
    const { rows } = await db.pool.query("select data from raw_record where source = 'forms'");
    expect(rows).toEqual([{ data: { id: 'r1', email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace' } }]);
  });

  it('refuses a wrong signature, a missing one, or another secret with 401', async () => {
    const body = JSON.stringify({ id: 'r2', email: 'x@example.com' });
    const wrongSecret = await post('/v1/receive/forms/records', body, { secret: 'another_secret_0123456' });
    expect(wrongSecret.statusCode).toBe(401);
    expect(wrongSecret.json().error).toEqual({ code: 'HUB_ERR_SOURCE_UNAUTHENTICATED', message: 'X-Hub-Signature does not match the body and timestamp.' });
    // The signature of another body.
    const timestamp = now();
    const tampered = await post('/v1/receive/forms/records', body.replace('r2', 'r3'), { timestamp, signature: sign(SECRET, timestamp, body) });
    expect(tampered.statusCode).toBe(401);
    const missing = await app.inject({ method: 'POST', url: '/v1/receive/forms/records', headers: { 'content-type': 'application/json' }, payload: body });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.message).toMatch(/^X-Hub-Timestamp is required/);
    const { rows } = await db.pool.query("select count(*)::int as n from raw_record where source = 'forms' and external_id <> 'r1'");
    expect(rows[0].n).toBe(0);
  });

  it('refuses an old (or far future) timestamp with 401 and a replayed signature with 409', async () => {
    const body = JSON.stringify({ id: 'r4', email: 'bo@example.com' });
    const old = await post('/v1/receive/forms/records', body, { timestamp: now() - 120 });
    expect(old.statusCode).toBe(401);
    expect(old.json().error.message).toBe("X-Hub-Timestamp is more than 60 seconds from the hub's clock; sign each request when sending it.");
    expect((await post('/v1/receive/forms/records', body, { timestamp: now() + 120 })).statusCode).toBe(401);

    const timestamp = now();
    expect((await post('/v1/receive/forms/records', body, { timestamp })).statusCode).toBe(200);
    const replay = await post('/v1/receive/forms/records', body, { timestamp });
    expect(replay.statusCode).toBe(409);
    expect(replay.json().error.code).toBe('HUB_ERR_CONFLICT');
    // The same record sent again, signed anew, is a normal (unchanged) delivery.
    const again = await post('/v1/receive/forms/records', body, { timestamp: timestamp - 1 });
    expect(again.json()).toEqual({ external_id: 'r4', status: 'unchanged' });
  });

  it('answers 400 for bad JSON, a non-object or a missing id; 413 for an oversized body; 404 for unknown sources and streams', async () => {
    const badJson = await post('/v1/receive/forms/records', '{"id": "r5",');
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().error.code).toBe('HUB_ERR_BAD_REQUEST');
    expect(badJson.json().error.message).toMatch(/^The body is not valid JSON/);
    const array = await post('/v1/receive/forms/records', '[{"id":"r5"}]');
    expect(array.json().error).toMatchObject({ code: 'HUB_ERR_VALIDATION', details: { field: 'body' } });
    const noId = await post('/v1/receive/forms/records', '{"email":"c@example.com"}');
    expect(noId.json().error).toMatchObject({ code: 'HUB_ERR_VALIDATION', details: { field: 'body/id' } });

    const big = JSON.stringify({ id: 'r6', note: 'x'.repeat(300 * 1024) });
    const tooBig = await post('/v1/receive/forms/records', big);
    expect(tooBig.statusCode).toBe(413);
    expect(tooBig.json().error).toMatchObject({ code: 'HUB_ERR_PAYLOAD_TOO_LARGE', details: { field: 'body', limit_bytes: 256 * 1024 } });

    expect((await post('/v1/receive/nosuch/records', '{"id":"x"}')).statusCode).toBe(404);
    expect((await post('/v1/receive/shop/rows', '{"id":"x"}')).statusCode).toBe(404);
    expect((await post('/v1/receive/forms/orders', '{"id":"x"}')).statusCode).toBe(404);
    expect((await post('/v1/receive/forms/records', '{"id":"x"}', { contentType: 'application/xml' })).statusCode).toBe(415);
  });

  it('verifies in constant form: the pure checks', () => {
    const body = Buffer.from('{"id":1}');
    const at = 1_750_000_000;
    expect(verify(SECRET, { timestamp: String(at), signature: sign(SECRET, at, body) }, body, 300, at * 1000)).toEqual({ ok: true, signature: sign(SECRET, at, body), timestamp: at });
    expect(verify(SECRET, { timestamp: String(at), signature: 'sha256=zz' }, body, 300, at * 1000)).toMatchObject({ ok: false });
    expect(verify(SECRET, { timestamp: 'soon', signature: sign(SECRET, at, body) }, body, 300, at * 1000)).toMatchObject({ ok: false });
  });
});
