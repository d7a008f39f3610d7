/** Golden organisation records (B2B accounts, identity-resolution/organisations.ts) and the people who work for them. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef } from '../errors.js';
import * as sql from '../api-sql.js';

interface OrganisationRow {
  id: string;
  status: 'active' | 'merged' | 'retired';
  depth: number;
  data: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  people_count: number;
  people: object[];
}

/** Answers at most this many people of one organisation; `people_count` tells how many there are. */
const PEOPLE_LIMIT = 500;

const dateTime = { type: 'string', format: 'date-time' } as const;
const organisationId = { type: 'string', pattern: '^org_[0-9]{1,18}$', description: 'An organisation id, e.g. org_7.' } as const;

const organisationProperties = {
  id: { type: 'string', description: 'e.g. org_7' },
  name: { type: 'string', description: 'The name its first record gave.' },
  names: { type: 'array', items: { type: 'string' }, description: 'Every distinct name its records give, in the order first seen.' },
  domains: { type: 'array', items: { type: 'string' }, description: "Its website's domain and its people's email domains (never a free-mail provider's)." },
  identifiers: {
    type: 'array',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['scheme', 'value'],
      properties: { scheme: { type: 'string', enum: ['vat', 'registration_number'] }, value: { type: 'string', description: 'In capitals, without spaces or punctuation.' } },
    },
  },
  created_at: dateTime,
  updated_at: dateTime,
} as const;

const organisationSummary = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'names', 'domains', 'identifiers', 'created_at', 'updated_at'],
  properties: { ...organisationProperties, score: { type: 'number', minimum: 0, maximum: 1, description: 'With `name`: the relevance, 1 for an exact match.' } },
} as const;

const organisation = {
  type: 'object',
  additionalProperties: false,
  description: 'A golden organisation record and the people (golden customer records) who work for it.',
  required: ['id', 'names', 'domains', 'identifiers', 'people', 'people_count', 'created_at', 'updated_at'],
  properties: {
    ...organisationProperties,
    people_count: { type: 'integer', minimum: 0 },
    people: {
      type: 'array',
      description: `The customers whose organisation this is, oldest first (at most ${PEOPLE_LIMIT}).`,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: { id: { type: 'string', description: 'e.g. cus_42' }, full_name: { type: 'string' }, email: { type: 'string' }, job_title: { type: 'string' } },
      },
    },
  },
  examples: [
    {
      id: 'org_7',
      name: 'Havel Software GmbH',
      names: ['Havel Software GmbH', 'Havel Software'],
      domains: ['havelsoft.de'],
      identifiers: [{ scheme: 'vat', value: 'DE123456789' }],
      people_count: 1,
      people: [{ id: 'cus_42', full_name: 'Stefan Müller', email: 'stefan.muller0@havelsoft.de', job_title: 'Buyer' }],
      created_at: '2025-01-02T10:00:00.000Z',
      updated_at: '2025-03-01T08:30:00.000Z',
    },
  ],
} as const;

const fieldsOf = (row: { id: string; data: Record<string, unknown>; created_at: Date; updated_at: Date }) => ({
  id: row.id,
  ...row.data,
  created_at: row.created_at,
  updated_at: row.updated_at,
});

export async function organisationRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get<{ Querystring: { name?: string; limit: number } }>(
    '/v1/organisations',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listOrganisations',
        tags: ['organisations'],
        summary: 'Organisations, oldest first, or by name, most similar first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 200, description: 'Search by any of its names, or a word of one, typo-tolerant and ranked.', examples: ['Havel Software'] },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50, description: 'At most this many organisations.' },
          },
        },
        response: {
          200: { type: 'object', additionalProperties: false, required: ['data'], properties: { data: { type: 'array', items: organisationSummary } } },
        },
      },
    },
    async (request) => {
      const { rows } = await hub.pool.query<{ id: string; data: Record<string, unknown>; created_at: Date; updated_at: Date; score: number | null }>(
        sql.listOrganisations(request.query.name, request.query.limit),
      );
      return { data: rows.map((row) => ({ ...fieldsOf(row), ...(row.score !== null && { score: row.score }) })) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/organisations/:id',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getOrganisation',
        tags: ['organisations'],
        summary: 'One organisation: its names, identifiers, domains and people',
        params: { type: 'object', additionalProperties: false, required: ['id'], properties: { id: organisationId } },
        response: {
          200: organisation,
          308: {
            description: 'The id was merged into another organisation: `Location` names the surviving one.',
            headers: { location: { type: 'string' } },
            type: 'object',
            additionalProperties: false,
            required: ['merged_into'],
            properties: { merged_into: { type: 'string' } },
          },
          404: { description: 'No organisation has this id, or it was retired (HUB_ERR_NOT_FOUND).', ...errorRef },
        },
      },
    },
    async (request, reply) => {
      const { rows } = await hub.pool.query<OrganisationRow>(sql.organisationResource(request.params.id, PEOPLE_LIMIT));
      const row = rows[0];
      if (row && row.depth > 0) return reply.code(308).header('location', `/v1/organisations/${row.id}`).send({ merged_into: row.id });
      if (!row || row.status !== 'active') throw new HubError('HUB_ERR_NOT_FOUND', { what: 'organisation', id: request.params.id });
      return { ...fieldsOf(row), people_count: row.people_count, people: row.people };
    },
  );
}
