/** The change log: every change of a golden record, in commit order, for clients that keep a copy in step. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import * as sql from '../api-sql.js';
import { pageQuery, ref } from './schemas.js';

export async function changeRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get<{ Querystring: { after: number; limit: number } }>(
    '/v1/changes',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listChanges',
        tags: ['changes'],
        summary: 'Changes of golden records after a position, in position order',
        description: 'Poll with `after` set to the `next_after` of the previous answer; an empty page means nothing new yet.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            after: { type: 'integer', minimum: 0, default: 0, description: 'The last position the client has seen (0: from the start).' },
            limit: pageQuery.limit,
          },
        },
        response: {
          200: {
            description: 'Changes in position order.',
            type: 'object',
            additionalProperties: false,
            required: ['data', 'next_after'],
            properties: {
              data: { type: 'array', items: ref('Change') },
              next_after: { type: 'integer', minimum: 0, description: 'The position of the last change returned (or `after` when there was none).' },
            },
          },
        },
      },
    },
    async (request) => {
      const { after, limit } = request.query;
      const { rows } = await hub.pool.query<{ position: string }>(sql.listChanges(after, limit));
      return { data: rows, next_after: rows.length ? Number(rows[rows.length - 1].position) : after };
    },
  );
}
