/**
 * The HTTP API, built apart from `listen()` so tests drive it with `app.inject()` and
 * scripts/generate.ts can write its OpenAPI document without a server or a database.
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import pkg from '../package.json' with { type: 'json' };
import type { Hub } from './sync.js';
import { frameworkError, registerErrorHandling } from './errors.js';
import { registerAuth } from './auth.js';
import { sessionLifetimes } from './users.js';
import { registerSchemas, noQuery } from './routes/schemas.js';
import { customerRoutes } from './routes/customers.js';
import { changeRoutes } from './routes/changes.js';
import { sourceRoutes } from './routes/sources.js';
import { runRoutes } from './routes/runs.js';
import { quarantineRoutes } from './routes/quarantine.js';
import { lookupRoutes } from './routes/lookup.js';
import { webhookRoutes } from './routes/webhooks.js';
import { ingestRoutes } from './routes/ingest.js';
import { receiveRoutes } from './routes/receive.js';
import { registerIdempotency } from './idempotency.js';
import { operationRoutes } from './routes/operations.js';
import { privacyRoutes } from './routes/privacy.js';
import { exportRoutes } from './routes/export.js';
import { writeBackRoutes } from './routes/write-back.js';
import { matchRoutes } from './routes/match.js';
import { organisationRoutes } from './routes/organisations.js';
import { stewardRoutes } from './routes/steward.js';
import { sessionRoutes } from './routes/session.js';
import { uiRoutes } from './routes/ui.js';
import { registerRateLimit } from './rate-limit.js';
import { httpSeconds } from './metrics.js';

const DESCRIPTION = `Golden customer records built from every connected source, with the lineage of each value.

Authenticate with an API key: \`Authorization: Bearer hub_…\`, or as a person signed in with \`POST /v1/session\` (the \`hub_session\` cookie; every request but GET and HEAD also sends \`X-CSRF-Token\`; role steward = read + steward, admin = all). Scopes: \`read\`, \`steward\` (implies read), \`admin\` (implies both).
Errors always answer \`{ "error": { "code": "HUB_ERR_…", "message": "…" } }\`.
Every \`POST\` accepts an \`Idempotency-Key\` header: a retry with the same key and body gets the first answer again.`;

export async function buildApp(hub: Hub, options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: hub.log,
    logController: new LogController({ disableRequestLogging: !options.logger }),
    // Reject unknown query keys instead of silently dropping them (Fastify's default removes them).
    ajv: { customOptions: { removeAdditional: false } },
    // A URL Fastify cannot decode answers with the error schema too.
    frameworkErrors: frameworkError,
    // X-Forwarded-* headers are believed only from the proxies named in the configuration.
    trustProxy: hub.config.server?.trust_proxy ?? false,
  }) as unknown as FastifyInstance;

  // Guards first: they must see every route registered after them, the plugins' routes included.
  registerErrorHandling(app);
  registerAuth(app, hub.pool, sessionLifetimes(hub.config));
  registerIdempotency(app, hub.pool);
  registerSchemas(app);
  await registerRateLimit(app);
  // API latency by route pattern (not the raw URL, which would make a series per id).
  app.addHook('onResponse', async (request, reply) => {
    httpSeconds.observe({ method: request.method, route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'customer-hub', version: pkg.version, description: DESCRIPTION },
      components: {
        securitySchemes: {
          apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'API key', description: 'An API key of the hub (`hub_…`).' },
          writeKey: { type: 'http', scheme: 'basic', description: 'A write key of a segment source as the username, the password empty (as Segment SDKs send it).' },
          session: { type: 'apiKey', in: 'cookie', name: 'hub_session', description: 'The session cookie that `POST /v1/session` sets; writes also send `X-CSRF-Token`.' },
          signature: { type: 'apiKey', in: 'header', name: 'X-Hub-Signature', description: 'sha256=<hex HMAC-SHA256 of "<X-Hub-Timestamp>.<body>"> with the pushed source\'s secret.' },
        },
      },
      tags: [
        { name: 'customers', description: 'Golden customer records' },
        { name: 'organisations', description: 'Golden organisation records (B2B accounts) and their people' },
        { name: 'changes', description: 'The change log of golden records' },
        { name: 'sources', description: 'Sources, sync runs and quarantined input' },
        { name: 'webhooks', description: 'Subscriptions that push changes and failed runs to a URL, signed' },
        { name: 'privacy', description: 'Erasure and export of one person' },
        { name: 'ingest', description: 'Records pushed to the hub: analytics events from Segment / RudderStack SDKs (write key) and signed webhooks' },
        { name: 'session', description: 'Sign-in sessions of stewards and admins (the workspace)' },
        { name: 'steward', description: "The data steward's workspace: review queue, decisions, corrections, undo, decision log, overview" },
        { name: 'meta', description: 'Health and this document' },
      ],
    },
    // Components are named by their `$id` (the default would be def-0, def-1…).
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    transform: ({ schema, url, route }) => ({
      // Public routes that verify a credential of their own (write keys, signatures) declare it in their schema.
      schema: { ...schema, security: route.config?.scope === 'public' ? (schema.security ?? []) : [{ apiKey: [] }, { session: [] }] } as typeof schema,
      url,
    }),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get(
    '/health',
    {
      config: { scope: 'public' },
      schema: {
        operationId: 'health',
        tags: ['meta'],
        summary: 'Liveness',
        querystring: noQuery,
        response: { 200: { description: 'The hub is running.', type: 'object', additionalProperties: false, required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/openapi.json',
    {
      config: { scope: 'public' },
      schema: {
        operationId: 'openApiDocument',
        tags: ['meta'],
        summary: 'This OpenAPI document',
        querystring: noQuery,
        response: { 200: { description: 'The OpenAPI 3.1 document of this API.', type: 'object', additionalProperties: true } },
      },
    },
    async () => app.swagger(),
  );

  for (const routes of [operationRoutes, customerRoutes, lookupRoutes, changeRoutes, sourceRoutes, runRoutes, quarantineRoutes, webhookRoutes, ingestRoutes, receiveRoutes, privacyRoutes, exportRoutes, writeBackRoutes, matchRoutes, sessionRoutes, stewardRoutes, organisationRoutes]) await app.register(routes, { hub });
  await app.register(uiRoutes);
  return app;
}
