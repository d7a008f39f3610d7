/** Golden customer records: the list, one record with its lineage, and its timeline of interactions. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef, invalidInput } from '../errors.js';
import { recordConsent } from '../push.js';
import * as sql from '../api-sql.js';
import { SEGMENTS, type Segment } from '../customer-value.js';
import { customerOf, documentFormat, readDocument, storeDocuments, type ResourceRow } from '../customer-documents.js';
import goldenRecordSchema from '../../openapi/schemas/golden-record.schema.json' with { type: 'json' };
import { decodeCursor, page } from './cursor.js';
import { customerId, nextCursor, pageQuery, ref } from './schemas.js';

interface ListQuery {
  limit: number;
  cursor?: string;
  email?: string;
  phone?: string;
  updated_since?: string;
  name?: string;
  organisation?: string;
  segment?: Segment;
  fields?: string;
}

const ATTRIBUTES = Object.keys(goldenRecordSchema.properties);
/** What Fastify sends JSON as: a stored document goes out as the serializer's output would. */
const JSON_TYPE = 'application/json; charset=utf-8';
const TIMELINE_KINDS = ['order', 'quote', 'invoice', 'ticket', 'email', 'web_event', 'call', 'note'] as const;

interface GoldenRow {
  id: string;
  seq: string;
  status: 'active' | 'merged' | 'retired' | 'erased';
  data: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

interface MergeTarget {
  id: string;
  status: GoldenRow['status'];
  depth: number;
}

interface TimelineRow {
  raw_record_id: string;
  ordinal: number;
  kind: string;
  occurred_at: Date;
  occurred_us: string;
  data: Record<string, unknown>;
  source: string;
  stream: string;
  external_id: string;
  /** An email's thread (null otherwise). */
  thread_id: string | null;
  thread_awaiting_reply: boolean | null;
  thread_messages: number | null;
  thread_last_message_at: Date | null;
}

const INTERACTION_FIELDS = ['status', 'amount', 'currency', 'owner', 'thread_id', 'summary', 'external_id'] as const;

const idParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: customerId } } as const;

const movedResponses = {
  308: {
    description: 'The id was merged into another customer (following every later merge): `Location` names the surviving one.',
    headers: { location: { type: 'string' } },
    ...ref('MergedCustomer'),
  },
  404: { description: 'No customer has this id (HUB_ERR_NOT_FOUND).', ...errorRef },
  410: { description: 'The customer was retired: none of its source records belongs to it any more (HUB_ERR_GONE); or erased (HUB_ERR_ERASED).', ...errorRef },
};

/** E.164 as stored by the mapping. An unencoded `+` arrives as a space, so both are accepted. */
export function normalisePhone(phone: string | undefined): string | undefined {
  return phone === undefined ? undefined : `+${phone.replace(/^[+ ]/, '')}`;
}

/**
 * Where an id leads: the active record itself, or a 308 to the record it was merged into (at the end of the merge
 * chain). Answers unknown and retired ids with their errors.
 */
async function followCustomer(target: MergeTarget | undefined, id: string, reply: FastifyReply, path: (id: string) => string): Promise<string | undefined> {
  if (!target) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'customer', id });
  if (target.depth > 0) {
    await reply.code(308).header('location', path(target.id)).send({ merged_into: target.id });
    return undefined;
  }
  if (target.status === 'erased') throw new HubError('HUB_ERR_ERASED', { id });
  if (target.status !== 'active') throw new HubError('HUB_ERR_GONE', { id });
  return target.id;
}

/** followCustomer for routes that go on with the id. */
export async function resolveCustomer(hub: Hub, id: string, reply: FastifyReply, path: (id: string) => string): Promise<string | undefined> {
  const { rows } = await hub.pool.query<MergeTarget>(sql.resolveCustomerId(id));
  return followCustomer(rows[0], id, reply, path);
}

/** The full customer resource of an active golden record (what `GET /v1/customers/{id}` answers). */
export async function loadCustomer(hub: Hub, id: string): Promise<object> {
  const { rows } = await hub.pool.query<ResourceRow>(sql.customerResource(id));
  return customerOf(rows[0], hub.config.reporting);
}

interface TimelineQuery {
  limit: number;
  cursor?: string;
  kind?: string[];
  since?: string;
  until?: string;
}

export async function customerRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;
  const format = documentFormat(hub.config.reporting);

  app.get<{ Querystring: ListQuery }>(
    '/v1/customers',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listCustomers',
        tags: ['customers'],
        summary: 'List or search active golden customer records',
        description: `In a stable order (creation), or with \`name\` or \`organisation\`, most relevant first (\`score\`). Filters combine with AND.

Name search forgives accents, case and typos: "Jonh Smtih" finds John Smith first (trigram similarity on the normalised name,
and on the letters of each word in order, which forgives transposed letters).`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            email: { type: 'string', minLength: 1, maxLength: 320, description: 'Exact email, any case.' },
            phone: { type: 'string', pattern: '^[+ ]?[1-9][0-9]{1,14}$', description: 'Exact phone number in E.164, e.g. +4930123456.' },
            updated_since: { type: 'string', format: 'date-time', description: 'Only records updated at or after this time.' },
            name: {
              type: 'string',
              minLength: 2,
              maxLength: 200,
              pattern: '[\\p{L}\\p{N}]',
              description: 'Search by person name (given and family name, or full name), typo-tolerant and ranked.',
              examples: ['Jonh Smtih'],
            },
            organisation: {
              type: 'string',
              minLength: 2,
              maxLength: 200,
              pattern: '[\\p{L}\\p{N}]',
              description: 'Search by organisation name, or a word of it, typo-tolerant and ranked.',
              examples: ['Acme'],
            },
            segment: {
              type: 'string',
              enum: SEGMENTS,
              description: 'Only customers in this RFM segment (the rule is under `CustomerValue`), as of now.',
              examples: ['at_risk'],
            },
            fields: {
              type: 'string',
              pattern: '^[a-z_]+(,[a-z_]+)*$',
              description: `Sparse fieldset: the attributes to return, comma-separated (${ATTRIBUTES.join(', ')}); \`id\` and times always come.`,
              examples: ['given_name,family_name,email'],
            },
          },
        },
        response: {
          200: {
            description: 'A page of customers.',
            type: 'object',
            additionalProperties: false,
            required: ['data', 'next_cursor'],
            properties: { data: { type: 'array', items: ref('CustomerSummary') }, next_cursor: nextCursor },
          },
        },
      },
    },
    async (request) => {
      const { limit, cursor, email, phone, updated_since, name, organisation, segment, fields } = request.query;
      const only = fields?.split(',');
      const unknown = only?.find((field) => !ATTRIBUTES.includes(field));
      if (unknown) throw invalidInput('querystring/fields', `has no attribute '${unknown}'`);
      const ranked = name !== undefined || organisation !== undefined;
      const filter: sql.CustomerFilter = { email: email?.trim().toLowerCase(), phone: normalisePhone(phone), updatedSince: updated_since, name, organisation, segment };
      if (cursor !== undefined && ranked) {
        const [rank, seq] = decodeCursor(cursor, ['integer', 'digits']);
        filter.afterRank = { rank: Number(rank), seq: String(seq) };
      } else if (cursor !== undefined) {
        filter.afterSeq = String(decodeCursor(cursor, ['digits'])[0]);
      }
      const { rows } = await hub.pool.query<GoldenRow & { rank?: number }>(sql.listCustomers(filter, limit + 1));
      const { items, next_cursor } = page(rows, limit, (last) => (ranked ? [last.rank!, last.seq] : [last.seq]));
      return {
        data: items.map((row) => ({
          id: row.id,
          attributes: only ? Object.fromEntries(only.filter((field) => field in row.data).map((field) => [field, row.data[field]])) : row.data,
          created_at: row.created_at,
          updated_at: row.updated_at,
          ...(ranked ? { score: row.rank! / sql.SCORE_SCALE } : {}),
        })),
        next_cursor,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/customers/:id',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getCustomer',
        tags: ['customers'],
        summary: 'One golden customer record, with the lineage of its values and its source records',
        params: idParams,
        response: { 200: { description: 'The customer.', ...ref('Customer') }, ...movedResponses },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const stored = await readDocument(hub.pool, id, format);
      if (stored.body !== null) return reply.type(JSON_TYPE).send(stored.body);
      // One statement answers both where the id leads and, for an active id, the whole resource.
      const { rows } = await hub.pool.query<ResourceRow>(sql.customerResource(id));
      if ((await followCustomer(rows[0], id, reply, (survivor) => `/v1/customers/${survivor}`)) === undefined) return reply;
      const body = format.serialize(customerOf(rows[0], hub.config.reporting));
      await storeDocuments(hub.pool, [{ id, generation: stored.generation, body, validUntil: rows[0].valid_until }], format);
      return reply.type(JSON_TYPE).send(body);
    },
  );

  app.get<{ Params: { id: string }; Querystring: TimelineQuery }>(
    '/v1/customers/:id/timeline',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getCustomerTimeline',
        tags: ['customers'],
        summary: "The interactions of a customer's current source records, newest first",
        params: idParams,
        description:
          'Each interaction links the source record it came from; an email also carries its thread, with `awaiting_reply` for the thread as a whole. Filters combine with AND; the cursor stays valid only with the same filters.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            kind: {
              type: 'array',
              items: { type: 'string', enum: TIMELINE_KINDS },
              maxItems: TIMELINE_KINDS.length,
              description: 'Only these kinds; repeat the parameter for several (`kind=order&kind=quote`).',
              examples: [['order', 'quote']],
            },
            since: { type: 'string', format: 'date-time', description: 'Only interactions at or after this time.', examples: ['2025-01-01T00:00:00Z'] },
            until: { type: 'string', format: 'date-time', description: 'Only interactions before this time.', examples: ['2025-04-01T00:00:00Z'] },
          },
        },
        response: {
          200: {
            description: 'A page of interactions, newest first.',
            type: 'object',
            additionalProperties: false,
            required: ['data', 'next_cursor'],
            properties: { data: { type: 'array', items: ref('TimelineItem') }, next_cursor: nextCursor },
          },
          ...movedResponses,
        },
      },
    },
    async (request, reply) => {
      // The cursor does not depend on the customer, so a redirected client keeps its place.
      const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
      const id = await resolveCustomer(hub, request.params.id, reply, (survivor) => `/v1/customers/${survivor}/timeline${query}`);
      if (id === undefined) return reply;
      const { limit, cursor, kind, since, until } = request.query;
      const key = cursor === undefined ? undefined : decodeCursor(cursor, ['digits', 'digits', 'integer']);
      const before = key && { occurredUs: String(key[0]), rawRecordId: String(key[1]), ordinal: Number(key[2]) };
      const { rows } = await hub.pool.query<TimelineRow>(sql.customerTimeline(id, before, limit + 1, { kinds: kind, since, until }));
      const { items, next_cursor } = page(rows, limit, (last) => [last.occurred_us, last.raw_record_id, last.ordinal]);
      return {
        data: items.map((row) => ({
          ...Object.fromEntries(INTERACTION_FIELDS.filter((field) => row.data[field] !== undefined && row.data[field] !== null).map((field) => [field, row.data[field]])),
          kind: row.kind,
          occurred_at: row.occurred_at,
          source_record: { id: row.raw_record_id, source: row.source, stream: row.stream, external_id: row.external_id },
          ...(row.thread_id === null
            ? {}
            : { thread: { id: row.thread_id, awaiting_reply: row.thread_awaiting_reply, messages: row.thread_messages, last_message_at: row.thread_last_message_at } }),
        })),
        next_cursor,
      };
    },
  );

  app.put<{ Params: { id: string }; Body: { email_marketing: 'opt_in' | 'opt_out' } }>(
    '/v1/customers/:id/consent',
    {
      config: { scope: 'steward' },
      schema: {
        operationId: 'putCustomerConsent',
        tags: ['customers'],
        summary: "Record a customer's consent to email marketing",
        description: `The decision enters through the built-in \`hub\` source like any source record (raw → mapped → resolved), so it has
lineage, wins as the most recent value, appears in the change log, and reaches every connected system that can store it.`,
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['email_marketing'],
          properties: { email_marketing: { type: 'string', enum: ['opt_in', 'opt_out'] } },
          examples: [{ email_marketing: 'opt_out' }],
        },
        response: { 200: { description: 'The customer, updated.', ...ref('Customer') }, ...movedResponses },
      },
    },
    async (request, reply) => {
      const id = await resolveCustomer(hub, request.params.id, reply, (survivor) => `/v1/customers/${survivor}/consent`);
      if (id === undefined) return reply;
      await recordConsent(hub, id, request.body.email_marketing, request.actor!);
      // A consent record joins its golden record by the hub's identifier, so the customer keeps its id.
      return loadCustomer(hub, id);
    },
  );
}
