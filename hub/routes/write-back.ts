/** The write-back kill switch of a source (admin): read it, turn it off or on, or hand it back to the configuration. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef } from '../errors.js';
import { setWriteBackEnabled, writeBackStatus, WriteBackNotConfigured } from '../write-back.js';
import { noQuery } from './schemas.js';

const params = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } } } as const;

const statusSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['source', 'enabled', 'configured', 'override', 'position'],
  properties: {
    source: { type: 'string' },
    enabled: { type: 'boolean', description: 'Whether writes to this source run now: `override` when set, else `configured`.' },
    configured: { type: 'boolean', description: '`write_back.enabled` in hub.config.yaml.' },
    override: { type: ['boolean', 'null'], description: 'Set through this API; wins over the configuration. null: the configuration decides.' },
    position: { type: 'integer', minimum: 0, description: 'The change-log position up to which this source has been planned.' },
  },
  examples: [{ source: 'shop-eu', enabled: false, configured: true, override: false, position: 1042 }],
} as const;

export async function writeBackRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;
  const notConfigured = (name: string, error: unknown) => {
    if (error instanceof WriteBackNotConfigured) return new HubError('HUB_ERR_NOT_FOUND', { what: 'write-back source', id: name });
    return error;
  };

  app.get<{ Params: { name: string } }>(
    '/v1/sources/:name/write-back',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'getSourceWriteBack',
        tags: ['sources'],
        summary: "A source's write-back switch",
        params,
        querystring: noQuery,
        response: { 200: { description: 'The switch and where planning stands.', ...statusSchema }, 404: { description: 'No source with write-back has this name (HUB_ERR_NOT_FOUND).', ...errorRef } },
      },
    },
    async (request) => writeBackStatus(hub, request.params.name).catch((error) => Promise.reject(notConfigured(request.params.name, error))),
  );

  app.put<{ Params: { name: string }; Body: { enabled: boolean | null } }>(
    '/v1/sources/:name/write-back',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'putSourceWriteBack',
        tags: ['sources'],
        summary: 'Turn write-back to a source off or on (the kill switch)',
        description: `Stored in the database, it wins over \`write_back.enabled\` of the configuration; \`null\` hands the decision back to it.
While off, nothing is written to the source, also by jobs already queued; the changes wait and are written when it is turned on again.`,
        params,
        querystring: noQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['enabled'],
          properties: { enabled: { type: ['boolean', 'null'] } },
          examples: [{ enabled: false }],
        },
        response: { 200: { description: 'The switch, as now set.', ...statusSchema }, 404: { description: 'No source with write-back has this name (HUB_ERR_NOT_FOUND).', ...errorRef } },
      },
    },
    async (request) =>
      setWriteBackEnabled(hub, request.params.name, request.body.enabled, request.actor!).catch((error) => Promise.reject(notConfigured(request.params.name, error))),
  );
}
