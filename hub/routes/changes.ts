/** The change log: every change of a golden record, in commit order, for clients that keep a copy in step. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { errorRef } from '../errors.js';
import { CHANGE_RETENTION_DAYS, CursorExpiredError, cursorExpired, readChanges } from '../change-feed.js';
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
        description: `Poll with \`after\` set to the \`next_after\` of the previous answer; an empty page means nothing new yet.
Each change carries the customer as it is now (while active), shaped like \`GET /v1/customers\`.

**Retention**: changes are kept ${CHANGE_RETENTION_DAYS} days (HUB_CHANGE_RETENTION_DAYS). A cursor older than the oldest kept change answers 410
(HUB_ERR_CURSOR_EXPIRED) with \`details.oldest_after\`: re-export the customers (\`GET /v1/customers\`), then continue with that cursor.`,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            after: { type: 'integer', minimum: 0, default: 0, description: 'The last position the client has seen (0: from the start).', examples: [1040] },
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
          410: { description: 'Some changes after `after` are no longer kept (HUB_ERR_CURSOR_EXPIRED); `details.oldest_after` is the oldest valid cursor.', ...errorRef },
        },
      },
    },
    async (request) => {
      const { after, limit } = request.query;
      try {
        const data = await readChanges(hub.pool, after, limit);
        return { data, next_after: data.length ? data[data.length - 1].position : after };
      } catch (error) {
        if (error instanceof CursorExpiredError) throw cursorExpired(error);
        throw error;
      }
    },
  );
}
