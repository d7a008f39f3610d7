/** Bulk export: every active golden record as NDJSON, streamed in keyset pages, so memory stays flat however many there are. */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Pool, Statement } from '../db/database.js';
import type { Hub } from '../sync.js';
import { noQuery, ref } from './schemas.js';

/** Rows per query: large enough to keep the database busy, small enough to stay a few MB. */
export const EXPORT_PAGE = 1000;

export const exportPage = (afterSeq: string, limit: number): Statement => ({
  text: `select id, seq, data, created_at, updated_at from golden_record where status = 'active' and seq > $1::bigint order by seq limit $2`,
  values: [afterSeq, limit],
});

/** NDJSON lines of CustomerSummary, one page in memory at a time; stops when the reader goes away. */
export async function* customerLines(pool: Pool, pageSize = EXPORT_PAGE): AsyncGenerator<string> {
  let after = '0';
  for (;;) {
    const { rows } = await pool.query<{ id: string; seq: string; data: unknown; created_at: Date; updated_at: Date }>(exportPage(after, pageSize));
    if (rows.length === 0) return;
    yield rows.map((row) => JSON.stringify({ id: row.id, attributes: row.data, created_at: row.created_at, updated_at: row.updated_at })).join('\n') + '\n';
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1].seq;
  }
}

export async function exportRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;
  app.get(
    '/v1/export/customers',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'exportCustomers',
        tags: ['customers'],
        summary: 'Every active golden record, as NDJSON (one CustomerSummary per line), streamed',
        description: `For a first load or a re-export after \`GET /v1/changes\` answered 410. Read \`GET /v1/changes\`'s last position
(\`after\`) first, then export, then follow the change feed from that position: changes made during the export arrive again there.
Pages are read in creation order as they are streamed, not from one snapshot.`,
        querystring: noQuery,
        response: {
          200: { description: 'One customer per line.', content: { 'application/x-ndjson': { schema: ref('CustomerSummary') } } },
        },
      },
    },
    async (_request, reply) => {
      return reply.type('application/x-ndjson; charset=utf-8').send(Readable.from(customerLines(hub.pool)));
    },
  );
}
