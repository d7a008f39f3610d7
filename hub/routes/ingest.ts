/**
 * Event ingestion compatible with the Segment / RudderStack HTTP tracking API, so analytics SDKs send to the hub
 * unchanged (set their host to the hub and, for batching clients, their path to /v1/ingest/batch).
 * Authentication is the SDKs' own: Basic auth with a source's write key as the username. Each event is stored
 * through acceptRecords into the stream of its type, keyed by its messageId.
 * Reference: https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import type { Hub } from '../sync.js';
import { acceptRecords } from '../push.js';
import { HubError, errorRef, invalidInput } from '../errors.js';
import type { SourceRecord } from '../../connectors/kit/contract.js';
import { connector, checkEvent, toRecord, EVENT_TYPES, MAX_BATCH_BYTES, MAX_EVENT_BYTES, type EventType } from '../../connectors/segment/connector.js';
import type { SegmentConfig } from '../../connectors/segment/config.gen.js';
import { noQuery } from './schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The pushed source a write key or a webhook signature authenticated (ingest and receive routes). */
    pushedSource?: string;
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** The source whose write keys hold `key`; every key is compared, in constant time, so timing tells nothing. */
export function sourceForWriteKey(keys: { source: string; hash: Buffer }[], key: string): string | undefined {
  const hash = digest(key);
  let found: string | undefined;
  for (const entry of keys) if (timingSafeEqual(entry.hash, hash)) found ??= entry.source;
  return found;
}

function writeKeyOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  // Username = write key, password empty (Segment); a key given as `key:` or just `key` both work.
  const colon = decoded.indexOf(':');
  return colon === -1 ? decoded : decoded.slice(0, colon);
}

const ingestResponse = {
  description: 'The events were stored (a repeated messageId stores nothing new).',
  type: 'object',
  additionalProperties: false,
  required: ['success'],
  properties: { success: { type: 'boolean', enum: [true] } },
} as const;

const errorResponses = {
  401: { description: 'No write key, or not a write key of a segment source (HUB_ERR_SOURCE_UNAUTHENTICATED).', ...errorRef },
  413: { description: 'The body is over 32 KB (one event) or 500 KB (a batch), or an event of a batch is over 32 KB (HUB_ERR_PAYLOAD_TOO_LARGE).', ...errorRef },
};

const objectBody = (description: string) => ({ type: 'object', additionalProperties: true, description }) as const;

export async function ingestRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;
  const writeKeys = hub.config.sources
    .filter((source) => source.connector === connector.name)
    .flatMap((source) => ((source.config as SegmentConfig).write_keys ?? []).map((key) => ({ source: source.name, hash: digest(key) })));
  const configOf = (source: string) => hub.config.sources.find((candidate) => candidate.name === source)!.config as SegmentConfig;

  // Browser SDKs sending with navigator.sendBeacon post JSON as text/plain.
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch (error) {
      done(new HubError('HUB_ERR_BAD_REQUEST', { reason: `The body is not valid JSON: ${(error as Error).message}` }), undefined);
    }
  });

  // Before the body is read: an unauthenticated client does not get its body parsed.
  app.addHook('onRequest', async (request) => {
    if (request.is404) return;
    const key = writeKeyOf(request);
    const source = key === undefined ? undefined : sourceForWriteKey(writeKeys, key);
    if (!source) {
      throw new HubError(
        'HUB_ERR_SOURCE_UNAUTHENTICATED',
        { reason: key === undefined ? "A write key is required: send it as the username of Basic auth ('Authorization: Basic base64(<write key>:)')." : 'The write key is not valid.' },
        undefined,
        { 'www-authenticate': 'Basic realm="customer-hub ingest"' },
      );
    }
    request.pushedSource = source;
  });

  // Fastify's own 413 carries no detail: name the limit.
  app.setErrorHandler((error: FastifyError, request) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') throw new HubError('HUB_ERR_PAYLOAD_TOO_LARGE', {}, { field: 'body', limit_bytes: request.routeOptions.bodyLimit });
    throw error;
  });

  async function store(source: string, events: { type: EventType; event: Record<string, unknown> }[]): Promise<void> {
    const receivedAt = new Date();
    const byStream = new Map<EventType, Map<string, SourceRecord>>();
    for (const { type, event } of events) {
      const record = toRecord(type, event, configOf(source), receivedAt);
      // A messageId sent twice in one batch is one record (the last one wins, as a later delivery would).
      if (!byStream.has(type)) byStream.set(type, new Map());
      byStream.get(type)!.set(record.externalId, record);
    }
    for (const [stream, records] of byStream) {
      await acceptRecords(hub, source, stream, [...records.values()], { cause: 'api', actor: `ingest:${source}` });
    }
  }

  for (const type of EVENT_TYPES) {
    app.post<{ Body: Record<string, unknown> }>(
      `/v1/ingest/${type}`,
      {
        config: { scope: 'public' },
        bodyLimit: MAX_EVENT_BYTES,
        schema: {
          operationId: `ingest${type[0].toUpperCase()}${type.slice(1)}`,
          tags: ['ingest'],
          summary: `Record a ${type} call (Segment / RudderStack HTTP API)`,
          description: 'Authenticated by a write key of a segment source (Basic auth, the key as username). Idempotent on `messageId`.',
          security: [{ writeKey: [] }],
          querystring: noQuery,
          body: objectBody(`One ${type} event as in the Segment spec.`),
          response: { 200: ingestResponse, ...errorResponses },
        },
      },
      async (request) => {
        const problem = checkEvent(type, request.body, '');
        if (problem) throw invalidInput(`body/${problem.field}`, problem.reason);
        await store(request.pushedSource!, [{ type, event: request.body }]);
        return { success: true as const };
      },
    );
  }

  app.post<{ Body: { batch?: unknown; context?: unknown; integrations?: unknown } }>(
    '/v1/ingest/batch',
    {
      config: { scope: 'public' },
      bodyLimit: MAX_BATCH_BYTES,
      schema: {
        operationId: 'ingestBatch',
        tags: ['ingest'],
        summary: 'Record a batch of events (Segment / RudderStack HTTP API)',
        description:
          'Each item of `batch` has a `type` (identify, track, page, group, alias). The batch is taken whole or refused whole, naming the first bad item. Top-level `context` and `integrations` fill in what an event lacks.',
        security: [{ writeKey: [] }],
        querystring: noQuery,
        body: { type: 'object', additionalProperties: true, required: ['batch'], properties: { batch: { type: 'array' }, context: { type: 'object' }, integrations: { type: 'object' } } },
        response: { 200: ingestResponse, ...errorResponses },
      },
    },
    async (request) => {
      const { batch, context, integrations } = request.body as { batch: unknown[]; context?: Record<string, unknown>; integrations?: Record<string, unknown> };
      const events: { type: EventType; event: Record<string, unknown> }[] = [];
      for (const [index, item] of batch.entries()) {
        const at = `batch[${index}]`;
        const type = (item as { type?: unknown } | null)?.type;
        if (!EVENT_TYPES.includes(type as EventType)) throw invalidInput(`body/${at}.type`, `must be one of: ${EVENT_TYPES.join(', ')}`);
        if (Buffer.byteLength(JSON.stringify(item)) > MAX_EVENT_BYTES) {
          throw new HubError('HUB_ERR_PAYLOAD_TOO_LARGE', {}, { field: `body/${at}`, limit_bytes: MAX_EVENT_BYTES });
        }
        const problem = checkEvent(type as EventType, item, at);
        if (problem) throw invalidInput(`body/${problem.field}`, problem.reason);
        const event = { ...(item as Record<string, unknown>) };
        if (context && event.context === undefined) event.context = context;
        if (integrations && event.integrations === undefined) event.integrations = integrations;
        events.push({ type: type as EventType, event });
      }
      if (events.length) await store(request.pushedSource!, events);
      return { success: true as const };
    },
  );
}
