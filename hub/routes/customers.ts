/** Golden customer records: the list, one record with its lineage, and its timeline of interactions. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef } from '../errors.js';
import * as sql from '../api-sql.js';
import { decodeCursor, page } from './cursor.js';
import { customerId, nextCursor, pageQuery, ref } from './schemas.js';

interface ListQuery {
  limit: number;
  cursor?: string;
  email?: string;
  phone?: string;
  updated_since?: string;
}

interface GoldenRow {
  id: string;
  seq: string;
  status: 'active' | 'merged' | 'retired';
  data: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

interface LineageRow {
  attribute: string;
  value: unknown;
  survived: boolean;
  raw_record_id: string;
  source: string;
  observed_at: Date;
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
  410: { description: 'The customer was retired: none of its source records belongs to it any more (HUB_ERR_GONE).', ...errorRef },
};

/** E.164 as stored by the mapping. An unencoded `+` arrives as a space, so both are accepted. */
function normalisePhone(phone: string | undefined): string | undefined {
  return phone === undefined ? undefined : `+${phone.replace(/^[+ ]/, '')}`;
}

/**
 * Finds where an id leads: the active record itself, or a 308 to the record it was merged into (at the end
 * of the merge chain). Answers unknown and retired ids with their errors.
 */
async function resolveCustomer(hub: Hub, id: string, reply: FastifyReply, path: (id: string) => string): Promise<string | undefined> {
  const { rows } = await hub.pool.query<{ id: string; status: GoldenRow['status']; depth: number }>(sql.resolveCustomerId(id));
  const end = rows[0];
  if (!end) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'customer', id });
  if (end.depth > 0) {
    await reply.code(308).header('location', path(end.id)).send({ merged_into: end.id });
    return undefined;
  }
  if (end.status !== 'active') throw new HubError('HUB_ERR_GONE', { id });
  return end.id;
}

function byAttribute(rows: LineageRow[]): Record<string, object[]> {
  const result: Record<string, object[]> = {};
  for (const row of rows) {
    (result[row.attribute] ??= []).push({ value: row.value, source: row.source, raw_record_id: row.raw_record_id, observed_at: row.observed_at });
  }
  return result;
}

export async function customerRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get<{ Querystring: ListQuery }>(
    '/v1/customers',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listCustomers',
        tags: ['customers'],
        summary: 'List active golden customer records',
        description: 'In a stable order (creation); filters combine with AND.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            email: { type: 'string', minLength: 1, maxLength: 320, description: 'Exact email, any case.' },
            phone: { type: 'string', pattern: '^[+ ]?[1-9][0-9]{1,14}$', description: 'Exact phone number in E.164, e.g. +4930123456.' },
            updated_since: { type: 'string', format: 'date-time', description: 'Only records updated at or after this time.' },
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
      const { limit, cursor, email, phone, updated_since } = request.query;
      const afterSeq = cursor === undefined ? undefined : String(decodeCursor(cursor, ['digits'])[0]);
      const filter = { afterSeq, email: email?.trim().toLowerCase(), phone: normalisePhone(phone), updatedSince: updated_since };
      const { rows } = await hub.pool.query<GoldenRow>(sql.listCustomers(filter, limit + 1));
      const { items, next_cursor } = page(rows, limit, (last) => [last.seq]);
      return {
        data: items.map((row) => ({ id: row.id, attributes: row.data, created_at: row.created_at, updated_at: row.updated_at })),
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
      const id = await resolveCustomer(hub, request.params.id, reply, (survivor) => `/v1/customers/${survivor}`);
      if (id === undefined) return reply;
      const [golden, lineage, members] = await Promise.all([
        hub.pool.query<GoldenRow>(sql.getCustomer(id)),
        hub.pool.query<LineageRow>(sql.customerLineage(id)),
        hub.pool.query(sql.customerMembers(id)),
      ]);
      const record = golden.rows[0];
      return {
        id: record.id,
        status: record.status,
        attributes: record.data,
        lineage: byAttribute(lineage.rows.filter((row) => row.survived)),
        alternates: byAttribute(lineage.rows.filter((row) => !row.survived)),
        source_records: members.rows,
        created_at: record.created_at,
        updated_at: record.updated_at,
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    '/v1/customers/:id/timeline',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getCustomerTimeline',
        tags: ['customers'],
        summary: "The interactions of a customer's current source records, newest first",
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: pageQuery },
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
      const { limit, cursor } = request.query;
      const key = cursor === undefined ? undefined : decodeCursor(cursor, ['digits', 'digits', 'integer']);
      const before = key && { occurredUs: String(key[0]), rawRecordId: String(key[1]), ordinal: Number(key[2]) };
      const { rows } = await hub.pool.query<TimelineRow>(sql.customerTimeline(id, before, limit + 1));
      const { items, next_cursor } = page(rows, limit, (last) => [last.occurred_us, last.raw_record_id, last.ordinal]);
      return {
        data: items.map((row) => ({
          ...Object.fromEntries(INTERACTION_FIELDS.filter((field) => row.data[field] !== undefined && row.data[field] !== null).map((field) => [field, row.data[field]])),
          kind: row.kind,
          occurred_at: row.occurred_at,
          source_record: { id: row.raw_record_id, source: row.source, stream: row.stream, external_id: row.external_id },
        })),
        next_cursor,
      };
    },
  );
}
