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
    source: { type: 'string', description: 'The source, or `steward` for a pinned value that no source holds.' },
    raw_record_id: { ...nullable(integerId), description: 'The source record; null for a pinned value that no source holds.' },
    observed_at: { ...dateTime, description: 'When the value was true at the source (when it was pinned, for the steward).' },
    rule: {
      type: 'string',
      enum: ['pinned', 'most_recent', 'source_priority', 'most_frequent', 'most_complete', 'consent'],
      description: 'For a surviving value: the survivorship rule that chose it (`pinned`: a steward pinned it).',
    },
    pinned_value_id: { ...integerId, description: 'The steward pin that chose this value.' },
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
        required: ['raw_record_id', 'source', 'stream', 'external_id', 'since', 'cause', 'detail', 'omitted_values'],
        properties: {
          raw_record_id: integerId,
          source: { type: 'string' },
          stream: { type: 'string' },
          external_id: { type: 'string' },
          since: dateTime,
          cause: { type: 'string', enum: ['rule', 'match', 'steward'] },
          detail: { type: 'object', additionalProperties: true, description: 'What linked the record, e.g. the shared keys.' },
          omitted_values: {
            type: 'array',
            description: "Values of the record its mapping left out (rules with `on_error: omit`), and why; the raw record keeps them as received.",
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['field', 'target', 'reason'],
              properties: {
                field: { type: 'string', description: 'The source field (an element of a list by its index).' },
                target: { type: 'string', description: 'The canonical target the rule fills.' },
                reason: { type: 'string' },
              },
            },
          },
        },
      },
    },
    value: ref('CustomerValue'),
    created_at: dateTime,
    updated_at: dateTime,
  },
};

const money = { type: 'object', additionalProperties: { type: 'number' }, description: 'Amount per ISO 4217 currency.', examples: [{ EUR: 1250.5 }] } as const;
const valueSourceRef = { raw_record_id: integerId, source: { type: 'string' } } as const;

const customerValue = {
  $id: 'CustomerValue',
  title: 'CustomerValue',
  description: `What the customer is worth and what is open with them, computed from the interactions of its current source records at
\`computed_at\`. Orders count unless cancelled, canceled, refunded, void or failed. Segment rule: \`prospect\` (no order),
\`champion\` (last order within 90 days and 3 or more orders), \`new\` (first order within 90 days), \`loyal\` (last order within
180 days, 2 or more orders), \`active\` (last order within 180 days), \`at_risk\` (last order within 365 days, 2 or more orders),
else \`lapsed\`. A quote is open unless accepted, won, rejected, lost, declined, expired, cancelled, closed, converted or ordered;
a ticket unless closed, resolved, solved, done or cancelled; an email thread awaits a reply when its latest email is received,
inbound or incoming. Lists hold at most 50 items; counts are complete.`,
  type: 'object',
  additionalProperties: false,
  required: ['computed_at', 'segment', 'rfm', 'revenue', 'open_quotes', 'open_tickets', 'emails_awaiting_reply', 'last_contact', 'owner', 'service_load'],
  properties: {
    computed_at: dateTime,
    segment: { type: 'string', enum: ['prospect', 'new', 'champion', 'loyal', 'active', 'at_risk', 'lapsed'] },
    rfm: {
      type: 'object',
      additionalProperties: false,
      required: ['recency_days', 'frequency', 'frequency_365_days', 'monetary_365_days', 'first_order_at', 'last_order_at'],
      properties: {
        recency_days: { ...nullable({ type: 'integer' }), description: 'Whole days since the last order.' },
        frequency: { type: 'integer', description: 'Orders, ever.' },
        frequency_365_days: { type: 'integer', description: 'Orders in the last 365 days.' },
        monetary_365_days: { ...money, description: 'Order revenue of the last 365 days per currency.' },
        first_order_at: nullable(dateTime),
        last_order_at: nullable(dateTime),
      },
    },
    revenue: { ...money, description: 'Order revenue, ever, per currency (no conversion).' },
    reporting: {
      type: 'object',
      additionalProperties: false,
      required: ['currency', 'revenue', 'monetary_365_days', 'complete', 'not_converted'],
      description: `Only when the configuration has \`reporting\`: the order revenue in the reporting currency, at the configured fixed rates.
A currency without a rate is not converted: its amounts are listed in \`not_converted\` and left out of the totals (\`complete\` is then false).`,
      properties: {
        currency: { type: 'string', description: 'The reporting currency (ISO 4217).' },
        revenue: { type: 'number', description: 'Order revenue, ever, of the converted currencies.' },
        monetary_365_days: { type: 'number', description: 'Order revenue of the last 365 days, of the converted currencies.' },
        complete: { type: 'boolean', description: 'False when some revenue is in a currency without a rate, so the totals leave it out.' },
        not_converted: {
          type: 'object',
          additionalProperties: false,
          required: ['revenue', 'monetary_365_days'],
          description: 'The amounts left out of the totals, per currency without a rate.',
          properties: { revenue: money, monetary_365_days: money },
        },
      },
      examples: [{ currency: 'EUR', revenue: 1287.4, monetary_365_days: 310, complete: false, not_converted: { revenue: { JPY: 12000 }, monetary_365_days: {} } }],
    },
    open_quotes: {
      type: 'object',
      additionalProperties: false,
      required: ['count', 'salespeople', 'items'],
      properties: {
        count: { type: 'integer' },
        salespeople: { type: 'array', items: { type: 'string' }, description: 'Who issued the open quotes (their `owner`).' },
        items: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: {
              external_id: nullable({ type: 'string' }),
              occurred_at: dateTime,
              amount: { type: ['number', 'null'] },
              currency: nullable({ type: 'string' }),
              owner: nullable({ type: 'string' }),
              status: nullable({ type: 'string' }),
              ...valueSourceRef,
            },
          },
        },
      },
    },
    open_tickets: {
      type: 'object',
      additionalProperties: false,
      required: ['count', 'oldest_age_days', 'items'],
      properties: {
        count: { type: 'integer' },
        oldest_age_days: nullable({ type: 'integer' }),
        items: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: {
              external_id: nullable({ type: 'string' }),
              opened_at: dateTime,
              age_days: { type: 'integer' },
              status: nullable({ type: 'string' }),
              owner: nullable({ type: 'string' }),
              ...valueSourceRef,
            },
          },
        },
      },
    },
    emails_awaiting_reply: {
      type: 'object',
      additionalProperties: false,
      required: ['count', 'items'],
      properties: {
        count: { type: 'integer' },
        items: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: { thread_id: nullable({ type: 'string' }), received_at: dateTime, waiting_days: { type: 'integer' }, owner: nullable({ type: 'string' }), ...valueSourceRef },
          },
        },
      },
    },
    last_contact: {
      type: ['object', 'null'],
      description: 'The latest interaction other than a web event or an internal note.',
      additionalProperties: false,
      properties: { at: dateTime, kind: { type: 'string' }, owner: nullable({ type: 'string' }), source: { type: 'string' } },
    },
    owner: { ...nullable({ type: 'string' }), description: 'The owner named by the latest interaction that names one.' },
    service_load: {
      type: 'object',
      additionalProperties: false,
      required: ['tickets', 'orders', 'tickets_per_order'],
      properties: { tickets: { type: 'integer' }, orders: { type: 'integer' }, tickets_per_order: { type: ['number', 'null'] } },
    },
  },
};

const erasure = {
  $id: 'Erasure',
  title: 'Erasure',
  description: 'What an erasure removed. The source records are listed so that they can be erased in their systems too: the hub does not push erasures (write-back is not built).',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'erasure_id', 'erased_at', 'erased_by', 'removed', 'tombstones', 'source_records', 'write_back'],
  properties: {
    id: { type: 'string' },
    erasure_id: integerId,
    erased_at: dateTime,
    erased_by: { type: 'string' },
    removed: {
      type: 'object',
      additionalProperties: false,
      required: ['raw_records', 'canonical_records', 'match_keys', 'interactions', 'lineage_entries', 'memberships', 'pinned_values', 'quarantine_entries'],
      properties: Object.fromEntries(
        ['raw_records', 'canonical_records', 'match_keys', 'interactions', 'lineage_entries', 'memberships', 'pinned_values', 'quarantine_entries'].map((name) => [name, { type: 'integer', minimum: 0 }]),
      ),
    },
    tombstones: { type: 'integer', description: 'Hashed keys kept to stop the records from being imported again.' },
    source_records: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['source', 'stream', 'external_id'], properties: { source: { type: 'string' }, stream: { type: 'string' }, external_id: { type: 'string' } } },
    },
    write_back: { type: 'string' },
  },
  examples: [
    {
      id: 'cus_42',
      erasure_id: 1,
      erased_at: '2025-03-01T08:30:00.000Z',
      erased_by: 'api-key:dpo',
      removed: { raw_records: 2, canonical_records: 2, match_keys: 3, interactions: 4, lineage_entries: 9, memberships: 2, pinned_values: 0, quarantine_entries: 0 },
      tombstones: 7,
      source_records: [{ source: 'shop-eu', stream: 'customers', external_id: '123' }],
      write_back: 'Not pushed to the sources (write-back is not built yet): erase these source records there too.',
    },
  ],
};

const customerExport = {
  $id: 'CustomerExport',
  title: 'CustomerExport',
  description: 'Everything the hub holds on one person (a subject access request).',
  type: 'object',
  additionalProperties: false,
  required: ['exported_at', 'customer', 'source_records', 'memberships', 'changes', 'quarantine', 'pinned_values'],
  properties: {
    exported_at: dateTime,
    customer: ref('Customer'),
    source_records: {
      type: 'array',
      description: 'Each source record: as received (`raw`), in the canonical model, and its interactions.',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          raw_record_id: integerId,
          source: { type: 'string' },
          stream: { type: 'string' },
          external_id: { type: 'string' },
          raw: { description: 'The record exactly as received.' },
          content_hash: { type: 'string' },
          first_seen_at: dateTime,
          last_seen_at: dateTime,
          changed_at: dateTime,
          canonical: { description: 'The canonical form (null while quarantined).' },
          observed_at: nullable(dateTime),
          mapped_at: nullable(dateTime),
          interactions: { type: 'array', items: { type: 'object', additionalProperties: true } },
        },
      },
    },
    memberships: {
      type: 'array',
      description: 'Which golden record each of these source records belonged to, over time.',
      items: { type: 'object', additionalProperties: true },
    },
    changes: { type: 'array', items: ref('Change'), description: 'The change log of this customer and of the ids merged into it.' },
    quarantine: { type: 'array', items: ref('QuarantineEntry') },
    pinned_values: { type: 'array', items: { type: 'object', additionalProperties: true } },
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
    thread: {
      description: "An email's thread: the customer's emails of the same source with the same thread id.",
      type: 'object',
      additionalProperties: false,
      required: ['id', 'awaiting_reply', 'messages', 'last_message_at'],
      properties: {
        id: { type: 'string' },
        awaiting_reply: {
          type: 'boolean',
          description: "The thread's latest message is inbound and older than the source's `awaiting_reply_after_hours` (as of the source's last sync); a later reply clears it.",
        },
        messages: { type: 'integer', minimum: 1 },
        last_message_at: dateTime,
      },
    },
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
    kind: { type: 'string', enum: ['created', 'updated', 'merged', 'split', 'retired', 'erased'] },
    changed: { type: 'array', items: { type: 'string' }, description: 'The attributes whose values changed.' },
    detail: { type: 'object', additionalProperties: true, description: 'e.g. `into` of a merge or split, `merged` of an update, `erasure_id` of an erasure.' },
    cause: { type: 'string', enum: ['run', 'decision', 'api', 'source_removal'], description: '`source_removal`: `hub sources remove` took the source named by `cause_id` out.' },
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
    skipped: { type: 'integer', description: 'Records not stored because their person was erased.' },
    deleted: { type: 'integer', description: 'Records a completed full sweep no longer found: marked deleted, out of their golden records.' },
    with_omitted_values: {
      type: 'integer',
      description: "Records this run stored (or mapped again) with values an `on_error: omit` rule left out: they loaded without them; each customer's `source_records[].omitted_values` names them.",
    },
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
  required: ['name', 'connector', 'schedule', 'next_run_at', 'last_run', 'records', 'quarantined', 'records_with_omitted_values'],
  properties: {
    name: { type: 'string' },
    connector: { type: 'string' },
    schedule: nullable({ type: 'string' }),
    next_run_at: { ...nullable(dateTime), description: 'The next tick of `schedule` (in the hub\'s time zone); null without a schedule.' },
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
    records_with_omitted_values: {
      type: 'integer',
      description: "Records that loaded without values their mapping omitted (`on_error: omit`); each customer's `source_records` name them.",
    },
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

export const WEBHOOK_EVENTS = ['customer.created', 'customer.updated', 'customer.merged', 'customer.split', 'customer.retired', 'customer.erased', 'run.failed'] as const;
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

/** Every schema the routes refer to by `$id` (the components of the OpenAPI document). */
export function sharedSchemas(): { $id: string }[] {
  return [
    ...referencedDefs.map((name) => ({ $id: name, ...canonicalDefs[name] })),
    goldenAttributes,
    lineageEntry,
    customerSummary,
    sourceRecord,
    customerValue,
    customer,
    merged,
    erasure,
    customerExport,
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
  ];
}

export function registerSchemas(app: FastifyInstance): void {
  for (const schema of sharedSchemas()) app.addSchema(schema);
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
