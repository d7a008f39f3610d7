/**
 * The data steward's API (hub/steward.ts): the review queue, decisions on its items, corrections of golden
 * records (split, merge, pin), undo, the decision log (JSON or CSV) and the overview.
 */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef } from '../errors.js';
import { PINNABLE_ATTRIBUTES } from '../../identity-resolution/survivorship.js';
import {
  CSV_COLUMNS,
  DECISION_KINDS,
  actorOf,
  decideConflict,
  decidePair,
  decisionsCsv,
  listDecisions,
  mergeCustomers,
  parseReviewItemId,
  pinValue,
  reviewItemDetail,
  reviewQueue,
  splitCustomer,
  undoDecision,
  unpinValue,
  type DecisionFilter,
} from '../steward.js';
import { overview } from '../overview.js';
import { customerId, nextCursor, noQuery, pageQuery } from './schemas.js';

const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableString = { type: ['string', 'null'] } as const;
const reason = { type: 'string', minLength: 1, maxLength: 2000, description: 'Why, in the steward\'s words (kept in the decision log).' } as const;
const reviewItemId = { type: 'string', pattern: '^(pair-[1-9][0-9]{0,17}|conflict-cus_[0-9]{1,18}-[a-z_]{1,40})$', description: '`pair-<n>` or `conflict-<customer id>-<attribute>`.' } as const;

const reviewItemProperties = {
  id: reviewItemId,
  kind: { type: 'string', enum: ['pair', 'conflict'] },
  status: {
    type: 'string',
    enum: ['open', 'deferred', 'linked', 'rejected', 'settled'],
    description: 'open: waiting; deferred: put off by a steward; linked / rejected: merged / kept apart by a steward; settled: a later run joined the pair.',
  },
  created_at: { ...dateTime, description: 'When the item arose (a conflict: when the later of two disagreeing sources said its value).' },
  impact: { type: 'number', description: 'Orders of the customers involved (customer value) where the hub knows any, else their number of source records.' },
  summary: { type: 'string' },
  golden_ids: { type: 'array', items: { type: 'string' }, description: 'The customers involved, now.' },
} as const;

const reviewItem = {
  type: 'object',
  additionalProperties: false,
  required: Object.keys(reviewItemProperties),
  properties: reviewItemProperties,
} as const;

const sideRecord = {
  type: 'object',
  additionalProperties: false,
  required: ['raw_record_id', 'source', 'stream', 'external_id', 'golden_id', 'observed_at', 'data'],
  properties: {
    raw_record_id: { type: 'integer' },
    source: { type: 'string' },
    stream: { type: 'string' },
    external_id: { type: 'string' },
    golden_id: { ...nullableString, description: 'The customer holding the record now.' },
    observed_at: { type: ['string', 'null'], format: 'date-time' },
    data: { type: 'object', additionalProperties: true, description: 'The canonical record.' },
  },
} as const;

const waterfall = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['prior_weight', 'total_weight', 'probability', 'attributes'],
  description: 'The pair under the current model, as a waterfall: the prior weight, plus each attribute\'s weight, gives the total weight and the probability. Null when a record has no customer data any more.',
  properties: {
    prior_weight: { type: 'number', description: 'log2 of the prior odds.' },
    total_weight: { type: 'number', description: 'The prior weight plus every attribute weight.' },
    probability: { type: 'number', minimum: 0, maximum: 1 },
    attributes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['attribute', 'level', 'label', 'weight', 'left', 'right'],
        properties: {
          attribute: { type: 'string' },
          level: { type: 'integer', description: 'Comparison level, 0 most similar; -1 when a side has no value.' },
          label: { type: 'string' },
          weight: { type: 'number', description: 'log2(m/u) of the level, with the term-frequency adjustment.' },
          left: nullableString,
          right: nullableString,
        },
      },
    },
  },
} as const;

const pairDetail = {
  type: 'object',
  additionalProperties: false,
  required: [...Object.keys(reviewItemProperties), 'probability', 'match_weight', 'reason', 'records', 'explanation'],
  properties: {
    ...reviewItemProperties,
    probability: { type: 'number', description: 'As scored when the item was queued.' },
    match_weight: { type: 'number' },
    reason: { type: 'string', description: 'between_thresholds, chaining_guard, or same_source (duplicates of one source the score alone may not join).' },
    records: { type: 'array', items: sideRecord, minItems: 2, maxItems: 2 },
    explanation: waterfall,
  },
} as const;

const conflictDetail = {
  type: 'object',
  additionalProperties: false,
  required: [...Object.keys(reviewItemProperties), 'golden_id', 'attribute', 'candidates'],
  properties: {
    ...reviewItemProperties,
    golden_id: customerId,
    attribute: { type: 'string' },
    candidates: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['value', 'source', 'raw_record_id', 'observed_at', 'survived'],
        properties: { value: {}, source: { type: 'string' }, raw_record_id: { type: ['integer', 'null'] }, observed_at: dateTime, survived: { type: 'boolean' } },
      },
    },
  },
} as const;

const decision = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'actor', 'reason', 'created_at', 'review_item_id', 'golden_ids', 'raw_record_ids', 'attribute', 'value', 'undone_at', 'undone_by', 'undo_reason'],
  properties: {
    id: { type: 'string', pattern: '^[0-9]+$' },
    kind: { type: 'string', enum: DECISION_KINDS },
    actor: { type: 'string', description: '`user:<name>` or `key:<key name>`.' },
    reason: nullableString,
    created_at: dateTime,
    review_item_id: nullableString,
    golden_ids: { type: 'array', items: { type: 'string' }, description: 'The customers the decision was about, when it was taken.' },
    raw_record_ids: { type: 'array', items: { type: 'integer' }, description: 'The source records it concerns.' },
    attribute: nullableString,
    value: { description: 'The pinned or chosen value (null for other kinds).' },
    undone_at: { type: ['string', 'null'], format: 'date-time' },
    undone_by: nullableString,
    undo_reason: nullableString,
  },
} as const;

const outcome = (description: string) => ({
  description,
  type: 'object',
  additionalProperties: false,
  required: ['decision', 'customers'],
  properties: { decision, customers: { type: 'array', items: { type: 'string' }, description: 'The customers now holding the records concerned.' } },
});

const notFound = { 404: { description: 'No such review item, customer, pin or decision (HUB_ERR_NOT_FOUND).', ...errorRef } };
const conflict = { 409: { description: 'Decided or undone already, or other decisions stand in the way (HUB_ERR_CONFLICT).', ...errorRef } };
const gone = { 410: { description: 'The customer was retired (HUB_ERR_GONE).', ...errorRef } };
const pinnable = { type: 'string', enum: PINNABLE_ATTRIBUTES } as const;

const exampleDecision = {
  id: '17',
  kind: 'merge',
  actor: 'user:ana',
  reason: 'Same person, moved house',
  created_at: '2026-11-20T09:14:03.120Z',
  review_item_id: 'pair-42',
  golden_ids: ['cus_12', 'cus_40'],
  raw_record_ids: [101, 388],
  attribute: null,
  value: null,
  undone_at: null,
  undone_by: null,
  undo_reason: null,
};

export async function stewardRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get<{ Querystring: { kind?: 'pair' | 'conflict'; status: 'open' | 'deferred' | 'all'; limit: number; cursor?: string } }>(
    '/v1/review',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'listReviewItems',
        tags: ['steward'],
        summary: 'The review queue: uncertain pairs and attribute conflicts, by impact, then oldest first',
        description: `A conflict: two sources whose most recent values of a single-valued attribute (a name, birth date, job title,
address, organisation, or the phone numbers) share none, on a customer without a pin of that attribute.`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            kind: { type: 'string', enum: ['pair', 'conflict'], description: 'Only pairs, or only conflicts (default: both).' },
            status: { type: 'string', enum: ['open', 'deferred', 'all'], default: 'open' },
            ...pageQuery,
          },
        },
        response: {
          200: {
            description: 'A page of review items.',
            type: 'object',
            additionalProperties: false,
            required: ['items', 'next_cursor'],
            properties: { items: { type: 'array', items: reviewItem }, next_cursor: nextCursor },
            examples: [
              {
                items: [{ id: 'pair-42', kind: 'pair', status: 'open', created_at: '2026-11-20T09:14:03.120Z', impact: 3, summary: 'crm:c-17 and shop:88, match probability 0.61 (between thresholds)', golden_ids: ['cus_12', 'cus_40'] }],
                next_cursor: null,
              },
            ],
          },
        },
      },
    },
    async (request) => reviewQueue(hub.pool, request.query),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/review/:id',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'getReviewItem',
        tags: ['steward'],
        summary: 'One review item: a pair side by side with its explanation, or a conflict with every candidate value and its source',
        params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: reviewItemId } },
        response: { 200: { description: 'The item (pair or conflict).', anyOf: [pairDetail, conflictDetail] }, ...notFound },
      },
    },
    async (request) => {
      const detail = await reviewItemDetail(hub, request.params.id);
      if (!detail) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'review item', id: request.params.id });
      return detail;
    },
  );

  app.post<{ Params: { id: string }; Body: { action: 'merge' | 'keep_apart' | 'defer' | 'choose'; value?: unknown; reason?: string } }>(
    '/v1/review/:id/decision',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'decideReviewItem',
        tags: ['steward'],
        summary: 'Decide a review item: merge, keep apart or defer a pair; choose the surviving value of a conflict (pinned) or defer it',
        description: 'Applied at once: the golden records and the change log update in the same transaction, and every later run respects the decision until it is undone.',
        params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: reviewItemId } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['action'],
          properties: {
            action: { type: 'string', enum: ['merge', 'keep_apart', 'defer', 'choose'], description: 'merge, keep_apart, defer: pairs; choose, defer: conflicts.' },
            value: { description: 'With `choose`: one of the candidate values.' },
            reason,
          },
          examples: [{ action: 'merge', reason: 'Same person, moved house' }, { action: 'choose', value: '+4915112345678' }],
        },
        response: { 200: { ...outcome('The decision and the customers now holding its records.'), examples: [{ decision: exampleDecision, customers: ['cus_12'] }] }, ...notFound, ...conflict, ...gone },
      },
    },
    async (request) => {
      const item = parseReviewItemId(request.params.id);
      const { action, value, reason: why } = request.body;
      const actor = actorOf(request);
      if (item.kind === 'pair') {
        if (action === 'choose') throw new HubError('HUB_ERR_VALIDATION', { field: 'body/action', reason: 'must be merge, keep_apart or defer for a pair' }, { field: 'body/action' });
        return decidePair(hub.pool, item.reviewItemId, action, why, actor);
      }
      if (action === 'defer') return decideConflict(hub.pool, item.goldenId, item.attribute, { action }, why, actor);
      if (action !== 'choose') throw new HubError('HUB_ERR_VALIDATION', { field: 'body/action', reason: 'must be choose or defer for a conflict' }, { field: 'body/action' });
      if (value === undefined) throw new HubError('HUB_ERR_VALIDATION', { field: 'body/value', reason: 'is required with choose' }, { field: 'body/value' });
      return decideConflict(hub.pool, item.goldenId, item.attribute, { action, value }, why, actor);
    },
  );

  app.post<{ Params: { id: string }; Body: { raw_record_ids: number[]; reason?: string } }>(
    '/v1/customers/:id/split',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'splitCustomer',
        tags: ['steward'],
        summary: 'Split source records off a customer into a new one (they are kept apart from the others from now on)',
        params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: customerId } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['raw_record_ids'],
          properties: { raw_record_ids: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'integer', minimum: 1 }, description: 'The source records that leave.' }, reason },
          examples: [{ raw_record_ids: [388], reason: 'Two people sharing a family email' }],
        },
        response: { 200: { ...outcome('The decision; `customers`: the customer that kept the other records, then the new one.'), examples: [{ decision: { ...exampleDecision, kind: 'split', review_item_id: null }, customers: ['cus_12', 'cus_97'] }] }, ...notFound, ...conflict, ...gone },
      },
    },
    async (request) => splitCustomer(hub.pool, request.params.id, request.body.raw_record_ids, request.body.reason, actorOf(request)),
  );

  app.post<{ Body: { ids: [string, string]; reason?: string } }>(
    '/v1/customers/merge',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'mergeCustomers',
        tags: ['steward'],
        summary: 'Merge two customers (the older id survives)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['ids'],
          properties: { ids: { type: 'array', items: customerId, minItems: 2, maxItems: 2 }, reason },
          examples: [{ ids: ['cus_12', 'cus_40'], reason: 'Same company contact' }],
        },
        response: { 200: { ...outcome('The decision; `customers`: the survivor.'), examples: [{ decision: { ...exampleDecision, kind: 'merge_customers', review_item_id: null }, customers: ['cus_12'] }] }, ...notFound, ...conflict, ...gone },
      },
    },
    async (request) => mergeCustomers(hub.pool, request.body.ids, request.body.reason, actorOf(request)),
  );

  const pinParams = { type: 'object', additionalProperties: false, required: ['id', 'attribute'], properties: { id: customerId, attribute: pinnable } } as const;

  app.put<{ Params: { id: string; attribute: string }; Body: { value: unknown; reason?: string } }>(
    '/v1/customers/:id/pins/:attribute',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'pinCustomerValue',
        tags: ['steward'],
        summary: "Pin the value of a customer's attribute: it survives over every source's value until unpinned",
        params: pinParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['value'],
          properties: { value: { description: 'In the shape of the attribute (GoldenAttributes): a string, or an address / organisation object.' }, reason },
          examples: [{ value: '+4915112345678', reason: 'Confirmed by phone' }],
        },
        response: { 200: { ...outcome('The decision and the customer.'), examples: [{ decision: { ...exampleDecision, kind: 'pin', review_item_id: null, attribute: 'phone', value: '+4915112345678' }, customers: ['cus_12'] }] }, ...notFound, ...conflict, ...gone },
      },
    },
    async (request) => pinValue(hub.pool, request.params.id, request.params.attribute, request.body.value, request.body.reason, actorOf(request)),
  );

  app.delete<{ Params: { id: string; attribute: string }; Querystring: { reason?: string } }>(
    '/v1/customers/:id/pins/:attribute',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'unpinCustomerValue',
        tags: ['steward'],
        summary: "Withdraw the pin of a customer's attribute: survivorship chooses again",
        params: pinParams,
        querystring: { type: 'object', additionalProperties: false, properties: { reason } },
        response: { 200: outcome('The decision and the customer.'), ...notFound, ...conflict, ...gone },
      },
    },
    async (request) => unpinValue(hub.pool, request.params.id, request.params.attribute, request.query.reason, actorOf(request)),
  );

  app.get<{ Querystring: DecisionFilter & { limit: number; cursor?: string; format?: 'json' | 'csv' } }>(
    '/v1/decisions',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'listDecisions',
        tags: ['steward'],
        summary: 'The decision log: who decided what, when and why; newest first; as CSV with format=csv or Accept: text/csv',
        description: `CSV: every matching decision (not paged), a header row (${CSV_COLUMNS.join(', ')}), RFC 4180 quoting, lists space-separated, \`value\` as JSON.`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            actor: { type: 'string', maxLength: 200, examples: ['user:ana'] },
            kind: { type: 'string', enum: DECISION_KINDS },
            since: { ...dateTime, description: 'Taken at or after.' },
            until: { ...dateTime, description: 'Taken before.' },
            golden_id: customerId,
            format: { type: 'string', enum: ['json', 'csv'] },
            ...pageQuery,
          },
        },
        response: {
          200: {
            description: 'A page of decisions (JSON), or all matching decisions (CSV).',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['items', 'next_cursor'],
                  properties: { items: { type: 'array', items: decision }, next_cursor: nextCursor },
                  examples: [{ items: [exampleDecision], next_cursor: null }],
                },
              },
              'text/csv': { schema: { type: 'string' } },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const { limit, cursor, format, ...filter } = request.query;
      const csv = format === 'csv' || (format === undefined && /\btext\/csv\b/.test(request.headers.accept ?? ''));
      if (!csv) return reply.type('application/json; charset=utf-8').send(await listDecisions(hub.pool, filter, { limit, cursor }));
      return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="decisions.csv"').send(await decisionsCsv(hub.pool, filter));
    },
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
    '/v1/decisions/:id/undo',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'undoDecision',
        tags: ['steward'],
        summary: 'Undo a decision: its constraints and pins are withdrawn and the records recomputed as if it had never been taken',
        params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,17}$' } } },
        body: { type: ['object', 'null'], additionalProperties: false, properties: { reason }, examples: [{ reason: 'Merged by mistake' }] },
        response: { 200: { ...outcome('The decision, now undone, and the customers now holding its records.'), examples: [{ decision: { ...exampleDecision, undone_at: '2026-11-20T09:20:00.000Z', undone_by: 'user:ana' }, customers: ['cus_12', 'cus_40'] }] }, ...notFound, ...conflict },
      },
    },
    async (request) => undoDecision(hub.pool, request.params.id, request.body?.reason, actorOf(request)),
  );

  const count = { type: 'integer', minimum: 0 } as const;
  app.get(
    '/v1/overview',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'overview',
        tags: ['steward'],
        summary: 'Totals now and a series per day over the last 30 days (UTC), oldest first',
        querystring: noQuery,
        response: {
          200: {
            description: 'The overview.',
            type: 'object',
            additionalProperties: false,
            required: ['totals', 'series'],
            properties: {
              totals: {
                type: 'object',
                additionalProperties: false,
                required: ['golden_records', 'source_records', 'review_open', 'review_oldest_days', 'quarantine_rate'],
                properties: {
                  golden_records: count,
                  source_records: { type: 'object', additionalProperties: count, description: 'Per source: its records (not deleted).' },
                  review_open: { ...count, description: 'Open review items: pairs and conflicts.' },
                  review_oldest_days: { ...count, description: 'Age of the oldest open item in days (0: none).' },
                  quarantine_rate: { type: 'number', minimum: 0, description: 'Records quarantined per record read by the runs of the last 30 days.' },
                },
              },
              series: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['day', 'golden_records', 'merges_automatic', 'merges_steward', 'review_backlog', 'quarantined', 'records_read'],
                  properties: {
                    day: { type: 'string', format: 'date' },
                    golden_records: { ...count, description: 'Active at the end of the day.' },
                    merges_automatic: { ...count, description: 'Golden records merged away by runs.' },
                    merges_steward: { ...count, description: 'Golden records merged away by steward decisions.' },
                    review_backlog: { ...count, description: 'Pair items open or deferred at the end of the day.' },
                    quarantined: count,
                    records_read: count,
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => overview(hub.pool),
  );
}
