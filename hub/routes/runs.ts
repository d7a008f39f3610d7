/** Sync runs: their state and counts, for a client that asked for a sync. */
import type { FastifyInstance } from 'fastify';
import { getRun, type Hub } from '../sync.js';
import { HubError, errorRef } from '../errors.js';
import { ref } from './schemas.js';

export async function runRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get<{ Params: { id: number } }>(
    '/v1/runs/:id',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getRun',
        tags: ['sources'],
        summary: 'One sync run',
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['id'],
          properties: { id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
        },
        querystring: { type: 'object', additionalProperties: false, properties: {} },
        response: { 200: { description: 'The run.', ...ref('Run') }, 404: { description: 'No run has this id (HUB_ERR_NOT_FOUND).', ...errorRef } },
      },
    },
    async (request) => {
      const run = await getRun(hub.pool, request.params.id);
      if (!run) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'run', id: request.params.id });
      return run;
    },
  );
}
