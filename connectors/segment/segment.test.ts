/**
 * The ingestion API against the official Segment Node SDK (@segment/analytics-node) pointed at a listening hub,
 * then its limits and refusals through app.inject().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Analytics } from '@segment/analytics-node';
import nock from 'nock';
import { checkConfig } from '../../hub/config.js';
import { silentLogger } from '../../hub/log.js';
import { createApiKey } from '../../hub/auth.js';
import { registerSources, type Hub } from '../../hub/sync.js';
import { createTestDatabase, type TestDatabase } from '../../tests/helpers/db.js';
import { buildTestApp, bearer } from '../../tests/helpers/app.js';
import { goldenOf, ingest } from '../../tests/helpers/pipeline.js';
import { checkEvent, toRecord } from './connector.js';
import type { SegmentConfig } from './config.gen.js';

const WRITE_KEY = 'wk_test_0123456789abcdef';
const basic = (key: string) => ({ authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` });

describe('event ingestion (Segment / RudderStack HTTP API)', () => {
  let db: TestDatabase;
  let hub: Hub;
  let app: FastifyInstance;
  let readKey: string;
  let host: string;

  beforeAll(async () => {
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    db = await createTestDatabase();
    const config = checkConfig(
      { sources: [{ name: 'web', connector: 'segment', config: { write_keys: ['${WEB_WRITE_KEY}'], form_events: ['Seminar Registered', 'Contact Form Submitted'] } }] },
      'test.yaml',
      { WEB_WRITE_KEY: WRITE_KEY },
    );
    hub = { pool: db.pool, config, log: silentLogger };
    await registerSources(db.pool, config);
    app = await buildTestApp(hub);
    host = await app.listen({ port: 0, host: '127.0.0.1' });
    readKey = await createApiKey(db.pool, 'reader', ['read']);
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
    nock.enableNetConnect();
  });

  it('takes events from the official Segment client and stitches the anonymous visitor to the person', async () => {
    await ingest(db.pool, 'crm', [{ id: 'c1', email: 'ada@example.com', given: 'Ada', updated: '2025-01-01T10:00:00Z' }]);
    const errors: unknown[] = [];
    const analytics = new Analytics({ writeKey: WRITE_KEY, host, path: '/v1/ingest/batch', flushAt: 10, maxRetries: 0 });
    analytics.on('error', (error) => errors.push(error));
    analytics.page({ anonymousId: 'anon-1', name: 'Seminars', messageId: 'm-page-1', timestamp: new Date('2025-03-01T09:00:00Z') });
    analytics.track({ anonymousId: 'anon-1', event: 'Seminar Registered', properties: { seminar: 'Pumps 101' }, messageId: 'm-track-1', timestamp: new Date('2025-03-01T09:05:00Z') });
    analytics.track({ anonymousId: 'anon-1', event: 'Video Played', messageId: 'm-track-2', timestamp: new Date('2025-03-01T09:06:00Z') });
    analytics.identify({ anonymousId: 'anon-1', userId: 'user-1', traits: { email: 'Ada@Example.com', firstName: 'Ada' }, messageId: 'm-identify-1', timestamp: new Date('2025-03-01T09:07:00Z') });
    analytics.group({ userId: 'user-1', groupId: 'acme', traits: { name: 'ACME GmbH' }, messageId: 'm-group-1', timestamp: new Date('2025-03-01T09:08:00Z') });
    await analytics.closeAndFlush({ timeout: 10_000 });
    expect(errors).toEqual([]);

    const ada = await goldenOf(db.pool, 'crm', 'c1');
    expect(ada).toBeDefined();
    for (const messageId of ['m-page-1', 'm-track-1', 'm-track-2', 'm-identify-1', 'm-group-1']) expect(await goldenOf(db.pool, 'web', messageId)).toBe(ada);
    const { rows } = await db.pool.query("select stream, external_id, data->>'type' as type from raw_record where source = 'web' order by external_id");
    expect(rows).toEqual([
      { stream: 'group', external_id: 'm-group-1', type: 'group' },
      { stream: 'identify', external_id: 'm-identify-1', type: 'identify' },
      { stream: 'page', external_id: 'm-page-1', type: 'page' },
      { stream: 'track', external_id: 'm-track-1', type: 'track' },
      { stream: 'track', external_id: 'm-track-2', type: 'track' },
    ]);

    // Only the configured form event is an interaction: the timeline shows it, the video play is not there.
    const timeline = await app.inject({ method: 'GET', url: `/v1/customers/${ada}/timeline?kind=web_event`, headers: bearer(readKey) });
    expect(timeline.statusCode).toBe(200);
    expect(timeline.json().data).toEqual([
      expect.objectContaining({ kind: 'web_event', summary: 'Seminar Registered', occurred_at: '2025-03-01T09:05:00.000Z', external_id: 'm-track-1', source_record: expect.objectContaining({ source: 'web', stream: 'track', external_id: 'm-track-1' }) }),
    ]);
  });

  it('is idempotent on messageId: a redelivery stores nothing new', async () => {
    const event = { anonymousId: 'anon-2', event: 'Contact Form Submitted', messageId: 'm-dup', timestamp: '2025-03-02T10:00:00Z' };
    for (let attempt = 0; attempt < 2; attempt++) {
      const response = await app.inject({ method: 'POST', url: '/v1/ingest/track', headers: basic(WRITE_KEY), payload: event });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ success: true });
    }
    const batch = await app.inject({ method: 'POST', url: '/v1/ingest/batch', headers: basic(WRITE_KEY), payload: { batch: [{ ...event, type: 'track' }, { ...event, type: 'track' }] } });
    expect(batch.statusCode).toBe(200);
    const { rows } = await db.pool.query("select count(*)::int as n from raw_record where source = 'web' and external_id = 'm-dup'");
    expect(rows[0].n).toBe(1);
    const { rows: interactions } = await db.pool.query("select count(*)::int as n from interaction i join raw_record r on r.id = i.raw_record_id where r.external_id = 'm-dup'");
    expect(interactions[0].n).toBe(1);
  });

  it('accepts JSON sent as text/plain (sendBeacon)', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/ingest/page',
      headers: { ...basic(WRITE_KEY), 'content-type': 'text/plain' },
      payload: JSON.stringify({ anonymousId: 'anon-3', messageId: 'm-beacon', timestamp: '2025-03-02T10:00:00Z' }),
    });
    expect(response.statusCode).toBe(200);
  });

  it('refuses a missing or unknown write key with 401, before reading the body', async () => {
    const none = await app.inject({ method: 'POST', url: '/v1/ingest/track', payload: { anonymousId: 'a', event: 'x' } });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Basic realm="customer-hub ingest"');
    expect(none.json().error.code).toBe('HUB_ERR_SOURCE_UNAUTHENTICATED');
    const wrong = await app.inject({ method: 'POST', url: '/v1/ingest/track', headers: basic('wk_wrong_0123456789abcdef'), payload: 'not json', });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.message).toBe('The write key is not valid.');
    // A hub API key is not a write key.
    const bearerKey = await app.inject({ method: 'POST', url: '/v1/ingest/track', headers: bearer(readKey), payload: { anonymousId: 'a', event: 'x' } });
    expect(bearerKey.statusCode).toBe(401);
  });

  it('answers 400 naming the field for invalid JSON or an invalid event', async () => {
    const post = (url: string, payload: unknown, contentType = 'application/json') =>
      app.inject({ method: 'POST', url, headers: { ...basic(WRITE_KEY), 'content-type': contentType }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });

    const badJson = await post('/v1/ingest/track', '{"event": ');
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().error.code).toBe('HUB_ERR_BAD_REQUEST');

    const noId = await post('/v1/ingest/track', { event: 'Seminar Registered' });
    expect(noId.statusCode).toBe(400);
    expect(noId.json().error).toMatchObject({ code: 'HUB_ERR_VALIDATION', message: 'body/userId or anonymousId is required', details: { field: 'body/userId' } });

    const noEvent = await post('/v1/ingest/track', { userId: 'u' });
    expect(noEvent.json().error.details.field).toBe('body/event');

    const badTime = await post('/v1/ingest/identify', { userId: 'u', timestamp: 'yesterday' });
    expect(badTime.json().error.message).toBe('body/timestamp must be an ISO 8601 date-time');

    const array = await post('/v1/ingest/identify', [{ userId: 'u' }]);
    expect(array.statusCode).toBe(400);

    const badItem = await post('/v1/ingest/batch', { batch: [{ type: 'identify', userId: 'u' }, { type: 'screen', userId: 'u' }] });
    expect(badItem.statusCode).toBe(400);
    expect(badItem.json().error.details.field).toBe('body/batch[1].type');

    const aliasWithout = await post('/v1/ingest/batch', { batch: [{ type: 'alias', userId: 'u' }] });
    expect(aliasWithout.json().error.details.field).toBe('body/batch[0].previousId');

    const noBatch = await post('/v1/ingest/batch', { events: [] });
    expect(noBatch.json().error.details.field).toBe('body/batch');
    // Nothing of a refused batch was stored.
    const { rows } = await db.pool.query("select count(*)::int as n from raw_record where source = 'web' and data->>'userId' = 'u'");
    expect(rows[0].n).toBe(0);
  });

  it('answers 413 for an event over 32 KB or a batch over 500 KB', async () => {
    const big = 'x'.repeat(33 * 1024);
    const event = await app.inject({ method: 'POST', url: '/v1/ingest/track', headers: basic(WRITE_KEY), payload: { userId: 'u', event: 'e', properties: { big } } });
    expect(event.statusCode).toBe(413);
    expect(event.json().error).toMatchObject({ code: 'HUB_ERR_PAYLOAD_TOO_LARGE', details: { field: 'body', limit_bytes: 32 * 1024 } });

    const itemTooBig = await app.inject({ method: 'POST', url: '/v1/ingest/batch', headers: basic(WRITE_KEY), payload: { batch: [{ type: 'track', userId: 'u', event: 'e', properties: { big } }] } });
    expect(itemTooBig.statusCode).toBe(413);
    expect(itemTooBig.json().error.details).toEqual({ field: 'body/batch[0]', limit_bytes: 32 * 1024 });

    const batch = Array.from({ length: 20 }, () => ({ type: 'track', userId: 'u', event: 'e', properties: { chunk: 'y'.repeat(30 * 1024) } }));
    const tooBig = await app.inject({ method: 'POST', url: '/v1/ingest/batch', headers: basic(WRITE_KEY), payload: { batch } });
    expect(tooBig.statusCode).toBe(413);
    expect(tooBig.json().error.details).toEqual({ field: 'body', limit_bytes: 500 * 1024 });
  });

  it('alias links a previous id to the user id', async () => {
    const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, headers: basic(WRITE_KEY), payload: payload as object });
    await post('/v1/ingest/track', { anonymousId: 'anon-9', event: 'Contact Form Submitted', messageId: 'm-a1', timestamp: '2025-04-01T10:00:00Z' });
    await post('/v1/ingest/identify', { userId: 'user-9', traits: { email: 'bo@example.com' }, messageId: 'm-a2', timestamp: '2025-04-01T10:01:00Z' });
    expect(await goldenOf(db.pool, 'web', 'm-a1')).not.toBe(await goldenOf(db.pool, 'web', 'm-a2'));
    expect((await post('/v1/ingest/alias', { previousId: 'anon-9', userId: 'user-9', messageId: 'm-a3', timestamp: '2025-04-01T10:02:00Z' })).statusCode).toBe(200);
    expect(await goldenOf(db.pool, 'web', 'm-a1')).toBe(await goldenOf(db.pool, 'web', 'm-a2'));
  });
});

describe('segment records (pure)', () => {
  const config: SegmentConfig = { write_keys: ['k'.repeat(16)], form_events: ['Seminar Registered'] };
  it('keys an event without messageId by its content, so an identical resend is one record', () => {
    const event = { userId: 'u', event: 'Seminar Registered', timestamp: '2025-01-01T00:00:00Z' };
    const first = toRecord('track', event, config, new Date());
    expect(first.externalId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(toRecord('track', { ...event }, config, new Date()).externalId).toBe(first.externalId);
    expect(first.data.form_submission).toEqual({ kind: 'web_event', name: 'Seminar Registered', at: '2025-01-01T00:00:00Z', message_id: first.externalId });
  });
  it('turns numeric ids into strings and leaves other events without form_submission', () => {
    const record = toRecord('page', { userId: 42, messageId: 'm' }, config, new Date('2025-05-05T00:00:00Z'));
    expect(record.data).toEqual({ userId: '42', messageId: 'm', type: 'page', timestamp: '2025-05-05T00:00:00.000Z' });
    expect(checkEvent('group', { userId: 'u' }, '')).toEqual({ field: 'groupId', reason: 'is required for group' });
  });
});
