/** Privacy: erasing a person and exporting everything held on one (admin). */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { errorRef } from '../errors.js';
import { eraseCustomer, exportPerson } from '../privacy.js';
import { loadCustomer, resolveCustomer } from './customers.js';
import { customerId, noQuery, ref } from './schemas.js';

const idParams = { type: 'object', additionalProperties: false, required: ['id'], properties: { id: customerId } } as const;

export async function privacyRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  app.post<{ Params: { id: string } }>(
    '/v1/customers/:id/erase',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'eraseCustomer',
        tags: ['privacy'],
        summary: 'Erase a person: their source records, canonical records, interactions and golden record',
        description: `Deletes the customer's current source records as received and mapped (with their match keys, interactions,
lineage, memberships and quarantine entries) and blanks the golden record, which answers 410 (HUB_ERR_ERASED) from then on.
Keeps hashed tombstones of each record's key and content, and of its emails, phones and identifiers: a later sync or push of the
same records skips them (the run counts them as \`skipped\`). Records who erased and when, and appends an \`erased\` change.
The erasure is **not** pushed to the sources (write-back is not built): the answer lists the source records to erase there.
No body. A merged-away id answers 308 to the survivor, which is then the one to erase.`,
        params: idParams,
        querystring: noQuery,
        response: {
          200: { description: 'The customer was erased; what was removed.', ...ref('Erasure') },
          308: { description: 'The id was merged into another customer: `Location` names it.', headers: { location: { type: 'string' } }, ...ref('MergedCustomer') },
          404: { description: 'No customer has this id (HUB_ERR_NOT_FOUND).', ...errorRef },
          409: { description: 'The customer is not active (HUB_ERR_CONFLICT).', ...errorRef },
          410: { description: 'The customer was retired (HUB_ERR_GONE) or already erased (HUB_ERR_ERASED).', ...errorRef },
        },
      },
    },
    async (request, reply) => {
      const id = await resolveCustomer(hub, request.params.id, reply, (survivor) => `/v1/customers/${survivor}/erase`);
      if (id === undefined) return reply;
      const result = await eraseCustomer(hub.pool, id, request.actor!);
      request.log.info({ customer: id, erasure: result.erasure_id, actor: result.erased_by }, 'customer erased');
      return result;
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/customers/:id/export',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'exportCustomer',
        tags: ['privacy'],
        summary: 'Everything held on one person: golden record, lineage, source records as received and mapped, interactions, changes, quarantine',
        params: idParams,
        querystring: noQuery,
        response: {
          200: { description: 'Everything held on the customer.', ...ref('CustomerExport') },
          308: { description: 'The id was merged into another customer: `Location` names it.', headers: { location: { type: 'string' } }, ...ref('MergedCustomer') },
          404: { description: 'No customer has this id (HUB_ERR_NOT_FOUND).', ...errorRef },
          410: { description: 'The customer was retired (HUB_ERR_GONE) or erased (HUB_ERR_ERASED).', ...errorRef },
        },
      },
    },
    async (request, reply) => {
      const id = await resolveCustomer(hub, request.params.id, reply, (survivor) => `/v1/customers/${survivor}/export`);
      if (id === undefined) return reply;
      const [customer, held] = await Promise.all([loadCustomer(hub, id), exportPerson(hub.pool, id)]);
      return { exported_at: new Date(), customer, ...held };
    },
  );
}
