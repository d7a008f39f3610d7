/** Quarantine: input that could not be read or mapped, so a steward can see why and fix the source or the mapping. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import * as sql from '../api-sql.js';
import { errorRef } from '../errors.js';
import { requeueQuarantined } from '../requeue.js';
import { decodeCursor, page } from './cursor.js';
import { nextCursor, noQuery, pageQuery, ref } from './schemas.js';

interface QuarantineQuery {
  limit: number;
  cursor?: string;
  source?: string;
  stage?: 'read' | 'map';
  open?: boolean;
}

export async function quarantineRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get<{ Querystring: QuarantineQuery }>(
    '/v1/quarantine',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listQuarantine',
        tags: ['sources'],
        summary: 'Quarantined input, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...pageQuery,
            source: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' },
            stage: { type: 'string', enum: ['read', 'map'], description: 'read: the input could not be parsed; map: it did not map.' },
            open: { type: 'boolean', description: 'true: only entries not resolved yet; false: only resolved ones; absent: all.' },
          },
        },
        response: {
          200: {
            description: 'A page of quarantine entries, newest first.',
            type: 'object',
            additionalProperties: false,
            required: ['data', 'next_cursor'],
            properties: { data: { type: 'array', items: ref('QuarantineEntry') }, next_cursor: nextCursor },
          },
        },
      },
    },
    async (request) => {
      const { limit, cursor, source, stage, open } = request.query;
      const beforeId = cursor === undefined ? undefined : Number(decodeCursor(cursor, ['digits'])[0]);
      const { rows } = await hub.pool.query<{ id: string; raw_record_id: string | null; run_id: string | null }>(sql.listQuarantine({ source, stage, open, beforeId }, limit + 1));
      const { items, next_cursor } = page(rows, limit, (last) => [last.id]);
      // pg answers bigint as a string; the serializer coerces it to an integer, but not in a nullable field.
      const number = (value: string | null) => (value === null ? null : Number(value));
      return { data: items.map((row) => ({ ...row, raw_record_id: number(row.raw_record_id), run_id: number(row.run_id) })), next_cursor };
    },
  );

  app.post<{ Params: { id: number } }>(
    '/v1/quarantine/:id/requeue',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'requeueQuarantined',
        tags: ['sources'],
        summary: 'Map a quarantined record again with the current mapping (after a fix)',
        description:
          "The kept raw record goes through its source's mapping as it is now and, when it maps, into identity resolution; its entry is then resolved. Input that could not be read has no kept record: fix it at the source and sync.",
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['id'],
          properties: { id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
        },
        querystring: noQuery,
        response: {
          200: {
            description: '`accepted`: the record mapped and is resolved; `still_quarantined`: it still does not map, and `reason` says why.',
            type: 'object',
            additionalProperties: false,
            required: ['status'],
            properties: { status: { type: 'string', enum: ['accepted', 'still_quarantined'] }, reason: { type: 'string' } },
            examples: [{ status: 'accepted' }, { status: 'still_quarantined', reason: 'born (person.birth_date): not a date in format dd.MM.yyyy' }],
          },
          404: { description: 'No quarantine entry has this id (HUB_ERR_NOT_FOUND).', ...errorRef },
          409: { description: 'The entry is resolved already, holds input that could not be read, or its source or mapping is gone or broken (HUB_ERR_CONFLICT).', ...errorRef },
        },
      },
    },
    async (request) => requeueQuarantined(hub, request.params.id, request.actor!),
  );
}
