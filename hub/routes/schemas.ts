/**
 * The API's shared schemas, registered by `$id` so @fastify/swagger emits each once as a component and
 * routes reference them as `Name#`. GoldenAttributes and its parts come from openapi/schemas, unchanged
 * but for their references, which point at the canonical model's file there and at a component here.
 */
import type { FastifyInstance } from 'fastify';
import goldenRecordSchema from '../../openapi/schemas/golden-record.schema.json' with { type: 'json' };
import canonicalRecordSchema from '../../openapi/schemas/canonical-record.schema.json' with { type: 'json' };

export const ref = (id: string) => ({ $ref: `${id}#` });

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullable = <T extends { type: string }>(schema: T) => ({ ...schema, type: [schema.type, 'null'] });
const integerId = { type: 'integer', minimum: 1 } as const;

/** `canonical-record.schema.json#/$defs/Address` → `Address#`, a component of its own. */
function withComponentRefs<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema).replace(/"canonical-record\.schema\.json#\/\$defs\/(\w+)"/g, '"$1#"'));
}

const canonicalDefs = canonicalRecordSchema.$defs as Record<string, Record<string, unknown>>;
const goldenAttributes = withComponentRefs(goldenRecordSchema);
const referencedDefs = [...new Set([...JSON.stringify(goldenAttributes).matchAll(/"\$ref":"(\w+)#"/g)].map((match) => match[1]))].sort();

const lineageEntry = {
  $id: 'LineageEntry',
  title: 'LineageEntry',
  description: 'One candidate value of an attribute and where it came from.',
  type: 'object',
  additionalProperties: false,
  required: ['value', 'source', 'raw_record_id', 'observed_at'],
  properties: {
    value: { description: 'The value, in the shape of the attribute (or of one item of a list attribute).' },
    source: { type: 'string' },
    raw_record_id: integerId,
    observed_at: { ...dateTime, description: 'When the value was true at the source.' },
  },
};

const lineageByAttribute = (description: string) => ({
  type: 'object',
  description,
  additionalProperties: { type: 'array', items: ref('LineageEntry') },
});

const customerSummary = {
  $id: 'CustomerSummary',
  title: 'CustomerSummary',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'attributes', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string', description: 'e.g. cus_42' },
    attributes: ref('GoldenAttributes'),
    created_at: dateTime,
    updated_at: dateTime,
    score: { type: 'number', minimum: 0, maximum: 1, description: 'With a `name` or `organisation` search: the relevance, 1 for an exact match.' },
  },
  examples: [
    {
      id: 'cus_42',
      attributes: { given_name: 'John', family_name: 'Smith', email: 'john.smith@example.com', emails: ['john.smith@example.com'], organisation: { name: 'Acme GmbH' } },
      created_at: '2025-01-02T10:00:00.000Z',
      updated_at: '2025-03-01T08:30:00.000Z',
    },
  ],
};

const sourceRecord = {
  $id: 'SourceRecordRef',
  title: 'SourceRecordRef',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'source', 'stream', 'external_id'],
  properties: {
    id: { ...integerId, description: 'The raw record id.' },
    source: { type: 'string' },
    stream: { type: 'string' },
    external_id: { type: 'string', description: 'The record id in the source system.' },
  },
};

const customer = {
  $id: 'Customer',
  title: 'Customer',
  description: 'A golden customer record with the lineage of its values and its current source records.',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status', 'attributes', 'alternates', 'lineage', 'source_records', 'created_at', 'updated_at'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['active'] },
    attributes: ref('GoldenAttributes'),
    lineage: lineageByAttribute(
      'Per attribute, where each surviving value came from: one entry for a single-valued attribute, one per distinct value of emails, phones and identifiers.',
    ),
    alternates: lineageByAttribute('Per attribute, the candidate values that did not survive (other values, and repeats of surviving ones by other records).'),
    source_records: {
      type: 'array',
      description: 'The source records that currently belong to this customer, and why.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['raw_record_id', 'source', 'stream', 'external_id', 'since', 'cause', 'detail'],
        properties: {
          raw_record_id: integerId,
          source: { type: 'string' },
          stream: { type: 'string' },
          external_id: { type: 'string' },
          since: dateTime,
          cause: { type: 'string', enum: ['rule', 'match', 'steward'] },
          detail: { type: 'object', additionalProperties: true, description: 'What linked the record, e.g. the shared keys.' },
        },
      },
    },
    created_at: dateTime,
    updated_at: dateTime,
  },
};

const merged = {
  $id: 'MergedCustomer',
  title: 'MergedCustomer',
  description: 'The id was merged into another customer; `Location` names the surviving one.',
  type: 'object',
  additionalProperties: false,
  required: ['merged_into'],
  properties: { merged_into: { type: 'string' } },
};

const timelineItem = {
  $id: 'TimelineItem',
  title: 'TimelineItem',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'occurred_at', 'source_record'],
  properties: {
    kind: { type: 'string', enum: ['order', 'quote', 'invoice', 'ticket', 'email', 'web_event', 'call', 'note'] },
    occurred_at: dateTime,
    status: { type: 'string' },
    amount: { type: 'number' },
    currency: { type: 'string' },
    owner: { type: 'string' },
    thread_id: { type: 'string' },
    summary: { type: 'string' },
    external_id: { type: 'string', description: 'The interaction id in the source system.' },
    source_record: ref('SourceRecordRef'),
  },
};

const change = {
  $id: 'Change',
  title: 'Change',
  type: 'object',
  additionalProperties: false,
  required: ['position', 'golden_id', 'kind', 'changed', 'detail', 'cause', 'cause_id', 'actor', 'created_at'],
  properties: {
    position: { ...integerId, description: 'Follows commit order: reading after the last position seen never misses a change.' },
    golden_id: { type: 'string' },
    kind: { type: 'string', enum: ['created', 'updated', 'merged', 'split', 'retired'] },
    changed: { type: 'array', items: { type: 'string' }, description: 'The attributes whose values changed.' },
    detail: { type: 'object', additionalProperties: true, description: 'e.g. `into` of a merge or split, `merged` of an update.' },
    cause: { type: 'string', enum: ['run', 'decision', 'api'] },
    cause_id: nullable({ type: 'string' }),
    actor: { type: 'string' },
    created_at: dateTime,
    customer: {
      description: 'The customer as it is now (not as of the change), while it is active; null once merged away or retired.',
      anyOf: [ref('CustomerSummary'), { type: 'null' }],
    },
  },
  examples: [
    {
      position: 1041,
      golden_id: 'cus_42',
      kind: 'updated',
      changed: ['email'],
      detail: {},
      cause: 'run',
      cause_id: '17',
      actor: 'source:shop',
      created_at: '2025-03-01T08:30:00.000Z',
      customer: { id: 'cus_42', attributes: { given_name: 'John', family_name: 'Smith', email: 'john@example.com' }, created_at: '2025-01-02T10:00:00.000Z', updated_at: '2025-03-01T08:30:00.000Z' },
    },
  ],
};

const runCounts = {
  read: { type: 'integer' },
  created: { type: 'integer' },
  updated: { type: 'integer' },
  unchanged: { type: 'integer' },
  quarantined: { type: 'integer' },
} as const;

const runStatus = { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed'] } as const;
const runTrigger = { type: 'string', enum: ['schedule', 'api', 'cli', 'start', 'remap'] } as const;

const run = {
  $id: 'Run',
  title: 'Run',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'source', 'status', 'trigger', ...Object.keys(runCounts), 'progress', 'error', 'queued_at', 'started_at', 'finished_at'],
  properties: {
    id: integerId,
    source: { type: 'string' },
    status: runStatus,
    trigger: runTrigger,
    ...runCounts,
    progress: {
      type: 'object',
      additionalProperties: false,
      properties: { stream: { type: 'string' }, done: { type: 'integer' }, total: { type: 'integer' } },
    },
    error: nullable({ type: 'string' }),
    queued_at: dateTime,
    started_at: nullable(dateTime),
    finished_at: nullable(dateTime),
  },
};

const source = {
  $id: 'Source',
  title: 'Source',
  description: "A configured source. Its connector configuration is never shown: it may carry secrets.",
  type: 'object',
  additionalProperties: false,
  required: ['name', 'connector', 'schedule', 'last_run', 'records', 'quarantined'],
  properties: {
    name: { type: 'string' },
    connector: { type: 'string' },
    schedule: nullable({ type: 'string' }),
    last_run: {
      type: ['object', 'null'],
      description: 'The latest run, if any.',
      additionalProperties: false,
      required: ['id', 'status', 'trigger', 'queued_at', 'started_at', 'finished_at', ...Object.keys(runCounts), 'error'],
      properties: {
        id: integerId,
        status: runStatus,
        trigger: runTrigger,
        queued_at: dateTime,
        started_at: nullable(dateTime),
        finished_at: nullable(dateTime),
        ...runCounts,
        error: nullable({ type: 'string' }),
      },
    },
    records: { type: 'integer', description: 'Raw records kept.' },
    quarantined: { type: 'integer', description: 'Open quarantine entries.' },
  },
};

const quarantineEntry = {
  $id: 'QuarantineEntry',
  title: 'QuarantineEntry',
  description: 'Input that could not be read or mapped, with the reason.',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'source', 'stream', 'external_id', 'line', 'field', 'reason', 'stage', 'payload', 'raw_record_id', 'run_id', 'created_at', 'resolved_at'],
  properties: {
    id: integerId,
    source: { type: 'string' },
    stream: { type: 'string' },
    external_id: nullable({ type: 'string' }),
    line: nullable({ type: 'integer' }),
    field: nullable({ type: 'string' }),
    reason: { type: 'string' },
    stage: { type: 'string', enum: ['read', 'map'] },
    payload: { description: 'The input as received.' },
    raw_record_id: nullable({ type: 'integer' }),
    run_id: nullable({ type: 'integer' }),
    created_at: dateTime,
    resolved_at: { ...nullable(dateTime), description: 'Set when a later sync or remap loaded the record after all.' },
  },
};

const lookupResult = {
  $id: 'LookupResult',
  title: 'LookupResult',
  description: "A customer found by a lookup, with its record ids in every source.",
  type: 'object',
  additionalProperties: false,
  required: ['customer', 'source_records'],
  properties: {
    customer: ref('CustomerSummary'),
    source_records: { type: 'array', items: ref('SourceRecordRef'), description: 'Every current source record of the customer, by source, stream and id.' },
  },
};

export const WEBHOOK_EVENTS = ['customer.created', 'customer.updated', 'customer.merged', 'customer.split', 'customer.retired', 'run.failed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];

const webhookDelivery = {
  $id: 'WebhookDelivery',
  title: 'WebhookDelivery',
  description: 'One POST of a batch of events to a subscription, with its attempts.',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'status', 'attempts', 'event_count', 'first_position', 'last_position', 'response_status', 'error', 'created_at', 'last_attempt_at', 'next_attempt_at', 'delivered_at'],
  properties: {
    id: integerId,
    status: { type: 'string', enum: ['pending', 'succeeded', 'failed'], description: 'failed: every attempt failed; the subscription is paused.' },
    attempts: { type: 'integer', minimum: 0 },
    event_count: { type: 'integer', minimum: 1 },
    first_position: { type: 'integer', description: 'Position (in the change log, or among run events) of the first event.' },
    last_position: { type: 'integer' },
    response_status: nullable({ type: 'integer' }),
    error: { ...nullable({ type: 'string' }), description: 'Why the last attempt failed.' },
    created_at: dateTime,
    last_attempt_at: nullable(dateTime),
    next_attempt_at: dateTime,
    delivered_at: nullable(dateTime),
  },
};

const webhookProperties = {
  id: integerId,
  url: { type: 'string', format: 'uri' },
  events: { type: 'array', items: { type: 'string', enum: WEBHOOK_EVENTS } },
  description: nullable({ type: 'string' }),
  status: { type: 'string', enum: ['active', 'paused'], description: 'paused: a delivery failed every attempt; see `failed_delivery`, then redeliver or resume.' },
  failed_delivery: { description: 'The delivery that paused the subscription.', anyOf: [ref('WebhookDelivery'), { type: 'null' }] },
  created_at: dateTime,
  paused_at: nullable(dateTime),
} as const;

const webhookExample = {
  id: 3,
  url: 'https://crm.example.com/hooks/customer-hub',
  events: ['customer.created', 'customer.updated', 'customer.merged'],
  description: 'CRM sync',
  status: 'active',
  failed_delivery: null,
  created_at: '2025-03-01T08:30:00.000Z',
  paused_at: null,
};

const webhook = {
  $id: 'Webhook',
  title: 'Webhook',
  description: 'A webhook subscription. Its secret is shown only when it is created.',
  type: 'object',
  additionalProperties: false,
  required: Object.keys(webhookProperties),
  properties: webhookProperties,
  examples: [webhookExample],
};

const webhookCreated = {
  $id: 'WebhookCreated',
  title: 'WebhookCreated',
  description: 'A new subscription with its signing secret: store it now, it is never shown again.',
  type: 'object',
  additionalProperties: false,
  required: [...Object.keys(webhookProperties), 'secret'],
  properties: { ...webhookProperties, secret: { type: 'string', description: 'Signs every delivery (HMAC-SHA256); shown once.' } },
  examples: [{ ...webhookExample, secret: 'whsec_Yp0c1b9zQm6sX1hQkFf3mKzR2bS4W0uHq8tV5nE7aJc' }],
};

const webhookEvent = {
  $id: 'WebhookEvent',
  title: 'WebhookEvent',
  description: `One event of a delivery. A delivery POSTs \`{ "events": [WebhookEvent, …] }\` with the headers
\`Hub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>\`, \`Hub-Delivery: <delivery id>\` and
\`Hub-Subscription: <subscription id>\`. Customer events arrive in change-log order; run events in the order the runs failed.`,
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'created_at', 'data'],
  properties: {
    id: { type: 'string', description: '`change:<position>` or `run:<position>`: the same on every redelivery.' },
    type: { type: 'string', enum: WEBHOOK_EVENTS },
    created_at: dateTime,
    data: { description: 'A Change (as in `GET /v1/changes`) for customer events; a Run (as in `GET /v1/runs/{id}`) for run.failed.', anyOf: [ref('Change'), ref('Run')] },
  },
};

export function registerSchemas(app: FastifyInstance): void {
  for (const name of referencedDefs) app.addSchema({ $id: name, ...canonicalDefs[name] });
  for (const schema of [
    goldenAttributes,
    lineageEntry,
    customerSummary,
    sourceRecord,
    customer,
    merged,
    timelineItem,
    change,
    run,
    source,
    quarantineEntry,
    lookupResult,
    webhookDelivery,
    webhook,
    webhookCreated,
    webhookEvent,
  ]) {
    app.addSchema(schema);
  }
}

/** Pagination parameters shared by the list routes. */
export const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50, description: 'Items per page.' },
  cursor: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,400}$', description: "`next_cursor` of the previous page; omit for the first." },
} as const;

export const nextCursor = { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last page.' } as const;

/** A query string that takes nothing: extra keys are a 400, not silently ignored. */
export const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

export const customerId = { type: 'string', pattern: '^cus_[0-9]{1,18}$', description: 'A golden record id, e.g. cus_42.' } as const;
