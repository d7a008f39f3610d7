/**
 * The segment connector: a pushed source for analytics events sent by Segment or RudderStack SDKs to
 * POST /v1/ingest/… (hub/routes/ingest.ts). An event is kept as received, keyed by its messageId, in the
 * stream of its type; this module only checks an event's shape and turns it into a record (pure functions).
 * Spec: https://segment.com/docs/connections/spec/common/ and https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { PushedConnector, SourceRecord } from '../kit/contract.js';
import { stableStringify } from '../../hub/stable-json.js';
import type { SegmentConfig } from './config.gen.js';
import configSchema from './config.schema.json' with { type: 'json' };

export const EVENT_TYPES = ['identify', 'track', 'page', 'group', 'alias'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Segment's documented limits: 32 KB per event, 500 KB per batch request. */
export const MAX_EVENT_BYTES = 32 * 1024;
export const MAX_BATCH_BYTES = 500 * 1024;

const commonFields = {
  messageId: { type: 'string' },
  anonymousId: { type: ['string', 'number'] },
  userId: { type: ['string', 'number'] },
  timestamp: { type: 'string' },
  context: { type: 'object' },
  integrations: { type: 'object' },
} as const;

const recordSchemas: Record<EventType, Record<string, unknown>> = {
  identify: { type: 'object', properties: { ...commonFields, traits: { type: 'object' } } },
  track: { type: 'object', required: ['event'], properties: { ...commonFields, event: { type: 'string' }, properties: { type: 'object' } } },
  page: { type: 'object', properties: { ...commonFields, name: { type: 'string' }, properties: { type: 'object' } } },
  group: { type: 'object', required: ['groupId'], properties: { ...commonFields, groupId: { type: ['string', 'number'] }, traits: { type: 'object' } } },
  alias: { type: 'object', required: ['userId', 'previousId'], properties: { ...commonFields, previousId: { type: ['string', 'number'] } } },
};

export const connector: PushedConnector<SegmentConfig> = {
  kind: 'pushed',
  name: 'segment',
  configSchema,
  defaultMappingPath: fileURLToPath(new URL('./mapping.yaml', import.meta.url)),
  streams: () => EVENT_TYPES.map((name) => ({ name, recordSchema: recordSchemas[name], primaryKey: ['messageId'], cursorField: 'timestamp' })),
};

/** Why an event cannot be taken, naming the field (`batch[2].userId`), or undefined when it can. */
export interface EventProblem {
  field: string;
  reason: string;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isId = (value: unknown) => (typeof value === 'string' && value.trim() !== '') || (typeof value === 'number' && Number.isFinite(value));

/**
 * The checks of Segment's HTTP API: every call needs a userId or an anonymousId (alias: userId and previousId),
 * track an event name, group a groupId; the optional objects must be objects and timestamps ISO 8601.
 */
export function checkEvent(type: EventType, event: unknown, at: string): EventProblem | undefined {
  if (!isObject(event)) return { field: at || '(body)', reason: 'must be a JSON object' };
  const field = (name: string) => (at ? `${at}.${name}` : name);
  if (type === 'alias') {
    if (!isId(event.userId)) return { field: field('userId'), reason: 'is required for alias (a non-empty string)' };
    if (!isId(event.previousId)) return { field: field('previousId'), reason: 'is required for alias (a non-empty string)' };
  } else if (!isId(event.userId) && !isId(event.anonymousId)) {
    return { field: field('userId'), reason: 'or anonymousId is required' };
  }
  if (type === 'track' && (typeof event.event !== 'string' || event.event.trim() === '')) return { field: field('event'), reason: 'is required for track (the event name)' };
  if (type === 'group' && !isId(event.groupId)) return { field: field('groupId'), reason: 'is required for group' };
  if (event.messageId !== undefined && (typeof event.messageId !== 'string' || event.messageId === '' || event.messageId.length > 200)) {
    return { field: field('messageId'), reason: 'must be a string of 1 to 200 characters' };
  }
  for (const name of ['traits', 'properties', 'context', 'integrations'] as const) {
    if (event[name] !== undefined && !isObject(event[name])) return { field: field(name), reason: 'must be a JSON object' };
  }
  for (const name of ['timestamp', 'originalTimestamp', 'sentAt'] as const) {
    const value = event[name];
    if (value !== undefined && (typeof value !== 'string' || Number.isNaN(Date.parse(value)))) return { field: field(name), reason: 'must be an ISO 8601 date-time' };
  }
  return undefined;
}

/**
 * The record of one checked event. Its id is the messageId (the SDKs' idempotency key: a retried delivery
 * stores nothing new); an event without one gets the hash of its content, so an identical resend is one record.
 * A form-submission event gains `form_submission` for the mapping; nothing else is added, so a resend is unchanged.
 */
export function toRecord(type: EventType, event: Record<string, unknown>, config: SegmentConfig, receivedAt: Date): SourceRecord {
  const data: Record<string, unknown> = { ...event, type };
  for (const name of ['userId', 'anonymousId', 'previousId', 'groupId'] as const) {
    if (typeof data[name] === 'number') data[name] = String(data[name]);
  }
  const messageId = typeof event.messageId === 'string' ? event.messageId : `sha256:${createHash('sha256').update(stableStringify(data)).digest('hex')}`;
  // Without a timestamp the event happened when it arrived (Segment sets it the same way).
  if (data.timestamp === undefined) data.timestamp = data.originalTimestamp ?? receivedAt.toISOString();
  if (type === 'track' && (config.form_events ?? []).includes(String(event.event))) {
    data.form_submission = { kind: 'web_event', name: event.event, at: data.timestamp, message_id: messageId };
  }
  return { externalId: messageId, data };
}
