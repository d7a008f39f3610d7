/** Readiness (for load balancers) and Prometheus metrics (for monitoring). /health, in app.ts, is liveness. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { listMigrations } from '../db/migrate.js';
import { metricsText } from '../metrics.js';
import { noQuery } from './schemas.js';

type Check = 'ok' | 'failing';

const readiness = {
  type: 'object',
  additionalProperties: false,
  required: ['status', 'checks'],
  properties: {
    status: { type: 'string', enum: ['ready', 'not_ready'] },
    checks: {
      type: 'object',
      additionalProperties: false,
      required: ['database', 'migrations', 'queue'],
      properties: { database: { enum: ['ok', 'failing'] }, migrations: { enum: ['ok', 'failing'] }, queue: { enum: ['ok', 'failing'] } },
    },
  },
} as const;

/** The database answers, every migration this hub knows is applied, and this process has its job queue. */
async function checks(hub: Hub): Promise<{ database: Check; migrations: Check; queue: Check }> {
  let database: Check = 'failing';
  let migrations: Check = 'failing';
  try {
    const { rows } = await hub.pool.query<{ version: string }>('select version from schema_migration');
    database = 'ok';
    const applied = new Set(rows.map((row) => row.version));
    migrations = (await listMigrations()).every((migration) => applied.has(migration.version)) ? 'ok' : 'failing';
  } catch {
    // An unreachable database fails the first two checks.
  }
  return { database, migrations, queue: hub.boss ? 'ok' : 'failing' };
}

export async function operationRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.get(
    '/ready',
    {
      config: { scope: 'public' },
      schema: {
        operationId: 'ready',
        tags: ['meta'],
        summary: 'Readiness: the database is reachable, migrations are current and the job queue runs',
        querystring: noQuery,
        response: { 200: { description: 'Ready to serve.', ...readiness }, 503: { description: 'Not ready; `checks` says why.', ...readiness } },
      },
    },
    async (_request, reply) => {
      const result = await checks(hub);
      const ready = Object.values(result).every((check) => check === 'ok');
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: result });
    },
  );

  app.get(
    '/metrics',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'metrics',
        tags: ['meta'],
        summary: 'Prometheus metrics of this process',
        querystring: noQuery,
        response: { 200: { description: 'Metrics in the Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => reply.type('text/plain; version=0.0.4').send(await metricsText(hub.boss)),
  );
}
