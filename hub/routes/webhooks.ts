/** Webhook subscriptions (admin): create, list, read, delete; redeliver a failed delivery, resume a paused subscription. */
import type { FastifyInstance } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef } from '../errors.js';
import * as sql from '../api-sql.js';
import { createSubscription, deliveryResource, redeliver, NothingToRedeliverError, type DeliveryRow } from '../webhooks.js';
import { WEBHOOK_EVENTS, noQuery, ref } from './schemas.js';

interface SubscriptionRow {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  status: 'active' | 'paused';
  created_at: Date;
  paused_at: Date | null;
  failed_delivery: (Omit<DeliveryRow, 'created_at' | 'last_attempt_at' | 'next_attempt_at' | 'delivered_at'> & Record<string, unknown>) | null;
}

const idParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
} as const;

const notFound = { 404: { description: 'No subscription has this id (HUB_ERR_NOT_FOUND).', ...errorRef } };

function resource(row: SubscriptionRow): object {
  return {
    id: Number(row.id),
    url: row.url,
    events: row.events,
    description: row.description,
    status: row.status,
    // row_to_json gives the failed delivery's times as text, which the schema's date-time passes through.
    failed_delivery: row.failed_delivery && { ...row.failed_delivery, id: Number(row.failed_delivery.id) },
    created_at: row.created_at,
    paused_at: row.paused_at,
  };
}

export async function webhookRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;

  async function load(id: number): Promise<object> {
    const { rows } = await hub.pool.query<SubscriptionRow>(sql.getSubscription(id));
    if (!rows[0]) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'webhook subscription', id });
    return resource(rows[0]);
  }

  app.post<{ Body: { url: string; events?: string[]; description?: string } }>(
    '/v1/webhooks',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'createWebhook',
        tags: ['webhooks'],
        summary: 'Subscribe a URL to events',
        description: `Deliveries POST \`{ "events": [WebhookEvent, …] }\` (up to 100 events), signed: \`Hub-Signature: t=<unix seconds>,v1=<hex>\`
where v1 is HMAC-SHA256 of \`<t>.<raw body>\` keyed with the secret. Verify it, and reject timestamps older than a few minutes.
Customer events arrive in change-log order, one delivery at a time; the subscription starts at the current end of the log.
A failed delivery is retried with backoff (after 10 s, 1 min, 5 min, 30 min, 2 h, 6 h); after the last retry the
subscription pauses and shows the delivery in \`failed_delivery\`: redeliver it, or resume.`,
        querystring: noQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string', format: 'uri', pattern: '^https?://', maxLength: 2000, description: 'Where deliveries are POSTed (http or https).' },
            events: {
              type: 'array',
              items: { type: 'string', enum: WEBHOOK_EVENTS },
              minItems: 1,
              uniqueItems: true,
              description: 'The event types to deliver (default: all).',
            },
            description: { type: 'string', maxLength: 500 },
          },
          examples: [{ url: 'https://crm.example.com/hooks/customer-hub', events: ['customer.created', 'customer.updated', 'customer.merged'], description: 'CRM sync' }],
        },
        response: {
          201: { description: 'The subscription with its secret, shown this once; `Location` is its URL.', headers: { location: { type: 'string' } }, ...ref('WebhookCreated') },
        },
      },
    },
    async (request, reply) => {
      const { url, events = [...WEBHOOK_EVENTS], description = null } = request.body;
      const { id, secret } = await createSubscription(hub.pool, { url, events, description, createdBy: request.actor! });
      return reply.code(201).header('location', `/v1/webhooks/${id}`).send({ ...(await load(id)), secret });
    },
  );

  app.get(
    '/v1/webhooks',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'listWebhooks',
        tags: ['webhooks'],
        summary: 'The webhook subscriptions (never their secrets)',
        querystring: noQuery,
        response: {
          200: { description: 'Every subscription, oldest first.', type: 'object', additionalProperties: false, required: ['data'], properties: { data: { type: 'array', items: ref('Webhook') } } },
        },
      },
    },
    async () => ({ data: (await hub.pool.query<SubscriptionRow>(sql.listSubscriptions())).rows.map(resource) }),
  );

  app.get<{ Params: { id: number } }>(
    '/v1/webhooks/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'getWebhook',
        tags: ['webhooks'],
        summary: 'One subscription, with its failed delivery when it is paused',
        params: idParams,
        querystring: noQuery,
        response: { 200: { description: 'The subscription.', ...ref('Webhook') }, ...notFound },
      },
    },
    async (request) => load(request.params.id),
  );

  app.get<{ Params: { id: number }; Querystring: { limit: number } }>(
    '/v1/webhooks/:id/deliveries',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'listWebhookDeliveries',
        tags: ['webhooks'],
        summary: "A subscription's latest deliveries, newest first",
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 } } },
        response: {
          200: { description: 'Deliveries, newest first.', type: 'object', additionalProperties: false, required: ['data'], properties: { data: { type: 'array', items: ref('WebhookDelivery') } } },
          ...notFound,
        },
      },
    },
    async (request) => {
      await load(request.params.id);
      const { rows } = await hub.pool.query<DeliveryRow>(sql.listDeliveries(request.params.id, request.query.limit));
      return { data: rows.map(deliveryResource) };
    },
  );

  app.delete<{ Params: { id: number } }>(
    '/v1/webhooks/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'deleteWebhook',
        tags: ['webhooks'],
        summary: 'Delete a subscription and its deliveries',
        params: idParams,
        querystring: noQuery,
        response: { 204: { description: 'Deleted.', type: 'null' }, ...notFound },
      },
    },
    async (request, reply) => {
      const { rowCount } = await hub.pool.query(sql.deleteSubscription(request.params.id));
      if (!rowCount) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'webhook subscription', id: request.params.id });
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { id: number }; Body: { delivery_id?: number } | undefined }>(
    '/v1/webhooks/:id/redeliver',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'redeliverWebhook',
        tags: ['webhooks'],
        summary: 'Send a delivery again now',
        description: `Without a body: the failed delivery that paused the subscription, once; if it succeeds the subscription resumes.
With \`delivery_id\`: that delivery again, e.g. one the receiver lost (its recorded outcome does not change). Events keep their ids.`,
        params: idParams,
        querystring: noQuery,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { delivery_id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } },
          examples: [{ delivery_id: 12 }],
        },
        response: {
          200: { description: "The delivery with this attempt's outcome (`status`, `response_status`, `error`).", ...ref('WebhookDelivery') },
          ...notFound,
          409: { description: 'Nothing to redeliver: no failed delivery, or no delivery with this id (HUB_ERR_CONFLICT).', ...errorRef },
        },
      },
    },
    async (request) => {
      try {
        const delivery = await redeliver(hub, request.params.id, request.body?.delivery_id);
        if (!delivery) throw new HubError('HUB_ERR_NOT_FOUND', { what: 'webhook subscription', id: request.params.id });
        return deliveryResource(delivery);
      } catch (error) {
        if (error instanceof NothingToRedeliverError) throw new HubError('HUB_ERR_CONFLICT', { reason: error.message });
        throw error;
      }
    },
  );

  app.post<{ Params: { id: number } }>(
    '/v1/webhooks/:id/resume',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'resumeWebhook',
        tags: ['webhooks'],
        summary: 'Resume a paused subscription',
        description: 'Its failed delivery is retried first, with a fresh round of attempts; then delivery goes on in order. Resuming an active subscription changes nothing.',
        params: idParams,
        querystring: noQuery,
        response: { 200: { description: 'The subscription.', ...ref('Webhook') }, ...notFound },
      },
    },
    async (request) => {
      await load(request.params.id);
      await hub.pool.query(sql.resumeSubscription(request.params.id));
      return load(request.params.id);
    },
  );
}
