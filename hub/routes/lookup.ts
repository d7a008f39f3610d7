/** Lookup: from a source's record id, an email or a phone number to the golden record and its ids in every other source. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef, invalidInput } from '../errors.js';
import * as sql from '../api-sql.js';
import { normalisePhone } from './customers.js';
import { ref } from './schemas.js';

interface LookupQuery {
  source?: string;
  stream?: string;
  id?: string;
  email?: string;
  phone?: string;
}

interface LookupRow {
  id: string;
  data: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  source_records: { id: number; source: string; stream: string; external_id: string }[];
}

/** An email or phone number may be shared (a family, an office): a lookup answers at most this many customers. */
const MAX_RESULTS = 20;

export async function lookupRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get<{ Querystring: LookupQuery }>(
    '/v1/lookup',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'lookupCustomer',
        tags: ['customers'],
        summary: "Find a customer by a source's record id, an email or a phone number",
        description: `Give exactly one of: \`source\` and \`id\` (optionally \`stream\`), \`email\`, or \`phone\`.
Answers the customer and the ids of its records in every source, e.g. to find the CRM contact of a shop customer.`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            source: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'The source the id belongs to.', examples: ['shop-eu'] },
            stream: { type: 'string', minLength: 1, maxLength: 200, description: 'The stream of the record, when a source has the same id in several.' },
            id: { type: 'string', minLength: 1, maxLength: 500, description: "The record's id in that source.", examples: ['123'] },
            email: { type: 'string', minLength: 3, maxLength: 320, description: 'Exact email, any case.', examples: ['john.smith@example.com'] },
            phone: { type: 'string', pattern: '^[+ ]?[1-9][0-9]{1,14}$', description: 'Phone number in E.164.', examples: ['+4930123456'] },
          },
        },
        response: {
          200: {
            description: `The customers found (one for a source record; up to ${MAX_RESULTS} for a shared email or phone), oldest first.`,
            type: 'object',
            additionalProperties: false,
            required: ['data'],
            properties: { data: { type: 'array', minItems: 1, items: ref('LookupResult') } },
            examples: [
              {
                data: [
                  {
                    customer: { id: 'cus_42', attributes: { given_name: 'John', family_name: 'Smith' }, created_at: '2025-01-02T10:00:00.000Z', updated_at: '2025-03-01T08:30:00.000Z' },
                    source_records: [
                      { id: 7, source: 'crm', stream: 'contacts', external_id: 'C-981' },
                      { id: 3, source: 'shop-eu', stream: 'customers', external_id: '123' },
                    ],
                  },
                ],
              },
            ],
          },
          404: { description: 'No active customer matches (HUB_ERR_NOT_FOUND).', ...errorRef },
        },
      },
    },
    async (request) => {
      const { source, stream, id, email, phone } = request.query;
      const given = [source !== undefined || id !== undefined || stream !== undefined, email !== undefined, phone !== undefined].filter(Boolean).length;
      if (given !== 1) throw invalidInput('querystring', 'needs exactly one of: source and id, email, phone');
      let key: sql.LookupKey;
      let notFound: { what: string; id: string };
      if (email !== undefined) {
        key = { email: email.trim().toLowerCase() };
        notFound = { what: 'customer with email', id: email };
      } else if (phone !== undefined) {
        key = { phone: normalisePhone(phone)! };
        notFound = { what: 'customer with phone', id: key.phone };
      } else {
        if (source === undefined) throw invalidInput('querystring/source', 'is required with id');
        if (id === undefined) throw invalidInput('querystring/id', 'is required with source');
        key = { source, id, stream };
        notFound = { what: `customer with a record of source '${source}'${stream ? ` (stream '${stream}')` : ''} and id`, id };
      }
      const { rows } = await hub.pool.query<LookupRow>(sql.lookupCustomers(key, MAX_RESULTS));
      if (rows.length === 0) throw new HubError('HUB_ERR_NOT_FOUND', notFound);
      return {
        data: rows.map((row) => ({
          customer: { id: row.id, attributes: row.data, created_at: row.created_at, updated_at: row.updated_at },
          source_records: row.source_records,
        })),
      };
    },
  );
}
