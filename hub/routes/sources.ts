/** Configured sources, their latest runs and next scheduled run; an admin can ask for a sync. */
import type { FastifyInstance } from 'fastify';
import { requestSync, UnknownSourceError, type Hub, type RunRow } from '../sync.js';
import { nextScheduledRun } from '../scheduler.js';
import { HubError, errorRef } from '../errors.js';
import * as runtimeSql from '../sql.js';
import { noQuery, ref } from './schemas.js';

interface SourceRow {
  name: string;
  last_run: Record<string, unknown> | null;
  records: number;
  quarantined: number;
  omitted: number;
}

const sourceName = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;

export async function sourceRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get(
    '/v1/sources',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listSources',
        tags: ['sources'],
        summary: 'The configured sources, their latest run and record counts',
        querystring: noQuery,
        response: {
          200: { description: 'The configured sources, in configuration order.', type: 'object', additionalProperties: false, required: ['data'], properties: { data: { type: 'array', items: ref('Source') } } },
        },
      },
    },
    async () => {
      const { rows } = await hub.pool.query<SourceRow>(runtimeSql.listSources());
      const known = new Map(rows.map((row) => [row.name, row]));
      // Only the listed fields leave: a source's `config` may carry credentials.
      return {
        data: await Promise.all(hub.config.sources.map(async (source) => ({
          name: source.name,
          connector: source.connector,
          schedule: source.schedule ?? null,
          next_run_at: source.schedule ? await nextScheduledRun(source.schedule) : null,
          last_run: known.get(source.name)?.last_run ?? null,
          records: known.get(source.name)?.records ?? 0,
          quarantined: known.get(source.name)?.quarantined ?? 0,
          records_with_omitted_values: known.get(source.name)?.omitted ?? 0,
        }))),
      };
    },
  );

  app.get<{ Params: { name: string }; Querystring: { limit: number } }>(
    '/v1/sources/:name/runs',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listSourceRuns',
        tags: ['sources'],
        summary: 'The latest sync runs of a source, newest first',
        params: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: sourceName } },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20, description: 'How many runs (default 20).' } },
        },
        response: {
          200: { description: 'The runs, newest first.', type: 'object', additionalProperties: false, required: ['data'], properties: { data: { type: 'array', items: ref('Run') } } },
          404: { description: 'No source has this name (HUB_ERR_NOT_FOUND).', ...errorRef },
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      if (!hub.config.sources.some((source) => source.name === name)) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'source', id: name });
      const { rows } = await hub.pool.query<RunRow>(runtimeSql.recentRunsOfSource(name, request.query.limit));
      return { data: rows };
    },
  );

  app.post<{ Params: { name: string } }>(
    '/v1/sources/:name/sync',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'syncSource',
        tags: ['sources'],
        summary: 'Queue a sync of a source',
        description: 'When the source already has a queued or running run, answers that run with `queued: false`.',
        params: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: sourceName } },
        querystring: noQuery,
        response: {
          202: {
            description: 'The run; `Location` is its URL.',
            headers: { location: { type: 'string' } },
            type: 'object',
            additionalProperties: false,
            required: ['run_id', 'queued'],
            properties: {
              run_id: { type: 'integer', minimum: 1 },
              queued: { type: 'boolean', description: 'false: a run of this source was already queued or running; this is that run.' },
            },
          },
          404: { description: 'No source has this name (HUB_ERR_NOT_FOUND).', ...errorRef },
          503: { description: 'This hub process runs no job queue (HUB_ERR_UNAVAILABLE).', ...errorRef },
        },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const notFound = () => new HubError('HUB_ERR_NOT_FOUND', { what: 'source', id: name });
      if (!hub.config.sources.some((source) => source.name === name)) throw notFound();
      if (!hub.boss) throw new HubError('HUB_ERR_UNAVAILABLE', { reason: 'The job queue is not running in this hub process.' });
      try {
        const { runId, queued } = await requestSync(hub, name, 'api');
        return reply.code(202).header('location', `/v1/runs/${runId}`).send({ run_id: runId, queued });
      } catch (error) {
        if (error instanceof UnknownSourceError) throw notFound();
        throw error;
      }
    },
  );
}
