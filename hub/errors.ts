/**
 * The API's one error catalogue (Fastify's `FST_ERR_*` style): each `HUB_ERR_*` code has its HTTP status
 * and message template, and every error answers with the one `HubError` schema. Nothing else reaches a
 * client: unknown errors become HUB_ERR_INTERNAL and go to the log, never their message or stack.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { isDatabaseUnavailable } from './db/database.js';

export const errorCatalogue = {
  HUB_ERR_VALIDATION: { status: 400, message: '{field} {reason}' },
  HUB_ERR_BAD_REQUEST: { status: 400, message: '{reason}' },
  HUB_ERR_UNAUTHENTICATED: { status: 401, message: "A valid API key is required: send it as 'Authorization: Bearer <key>' (or sign in: POST /v1/session)." },
  HUB_ERR_BAD_CREDENTIALS: { status: 401, message: 'The username or the password is wrong.' },
  HUB_ERR_SOURCE_UNAUTHENTICATED: { status: 401, message: '{reason}' },
  HUB_ERR_FORBIDDEN: { status: 403, message: "{who} lacks the '{scope}' scope." },
  HUB_ERR_CSRF: { status: 403, message: "A request signed in with the session cookie must send the session's csrf_token in the X-CSRF-Token header." },
  HUB_ERR_NOT_FOUND: { status: 404, message: "There is no {what} '{id}'." },
  HUB_ERR_ROUTE_NOT_FOUND: { status: 404, message: 'There is no route {method} {url}.' },
  HUB_ERR_CONFLICT: { status: 409, message: '{reason}' },
  HUB_ERR_IDEMPOTENCY_IN_PROGRESS: { status: 409, message: "A request with Idempotency-Key '{key}' is still being processed; retry later." },
  HUB_ERR_GONE: { status: 410, message: "Customer '{id}' was retired: none of its source records belongs to it any more." },
  HUB_ERR_ERASED: { status: 410, message: "Customer '{id}' was erased." },
  HUB_ERR_CURSOR_EXPIRED: {
    status: 410,
    message: 'Changes up to position {oldest} are no longer kept ({days} days of retention): re-export the customers, then continue with after={oldest}.',
  },
  HUB_ERR_PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  HUB_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: '{reason}' },
  HUB_ERR_IDEMPOTENCY_MISMATCH: { status: 422, message: "Idempotency-Key '{key}' was already used with a different request." },
  HUB_ERR_RATE_LIMITED: { status: 429, message: 'This API key made more than {max} requests in a minute; retry in {seconds} s.' },
  HUB_ERR_SIGN_IN_THROTTLED: { status: 429, message: 'Too many failed sign-ins for this username; retry in {seconds} s.' },
  HUB_ERR_INTERNAL: { status: 500, message: 'Internal error; it has been logged (request {requestId}).' },
  HUB_ERR_UNAVAILABLE: { status: 503, message: '{reason}' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export class HubError extends Error {
  readonly statusCode: number;

  constructor(
    readonly code: ErrorCode,
    params: Record<string, string | number> = {},
    readonly details?: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(errorCatalogue[code].message.replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? '')));
    this.name = 'HubError';
    this.statusCode = errorCatalogue[code].status;
  }
}

/** A request input the schema cannot express (a cursor this API did not issue); named like Ajv's messages. */
export function invalidInput(field: string, reason: string): HubError {
  return new HubError('HUB_ERR_VALIDATION', { field, reason }, { field });
}

export const ERROR_SCHEMA_ID = 'HubError';

export const errorResponseSchema = {
  $id: ERROR_SCHEMA_ID,
  title: ERROR_SCHEMA_ID,
  description: 'Every error of the API. `code` is stable; `message` is for people.',
  type: 'object',
  additionalProperties: false,
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: Object.keys(errorCatalogue) },
        message: { type: 'string' },
        details: {
          type: 'object',
          description: 'Facts about the error, e.g. `field`: the request part that failed validation (`querystring/limit`); `oldest_after`: the oldest valid change-log cursor.',
          additionalProperties: true,
          properties: { field: { type: 'string' }, oldest_after: { type: 'integer' } },
        },
      },
    },
  },
} as const;

export const errorRef = { $ref: `${ERROR_SCHEMA_ID}#` } as const;

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `querystring/limit must be <= 500`: where, then why, for the first issue Ajv reports. */
function describeValidation(issues: ValidationIssue[], context: string): { field: string; reason: string } {
  const issue = issues[0];
  let field = `${context}${issue.instancePath}`;
  let reason = issue.message ?? 'is invalid';
  if (issue.keyword === 'additionalProperties') {
    field += `/${String(issue.params.additionalProperty)}`;
    reason = 'is not allowed';
  } else if (issue.keyword === 'required') {
    field += `/${String(issue.params.missingProperty)}`;
    reason = 'is required';
  }
  return { field, reason };
}

function send(reply: FastifyReply, error: HubError): FastifyReply {
  const body: { code: string; message: string; details?: Record<string, unknown> } = { code: error.code, message: error.message };
  if (error.details) body.details = error.details;
  return reply.code(error.statusCode).headers(error.headers).send({ error: body });
}

function toHubError(error: FastifyError, request: FastifyRequest): HubError {
  if (error instanceof HubError) return error;
  if (error.validation) {
    const { field, reason } = describeValidation(error.validation as ValidationIssue[], error.validationContext ?? 'request');
    return invalidInput(field, reason);
  }
  // Fastify's own request errors (bad JSON, wrong content type) carry a safe message and a 4xx status.
  const status = error.statusCode ?? 500;
  if (error.code?.startsWith('FST_') && status >= 400 && status < 500) {
    if (status === 413) return new HubError('HUB_ERR_PAYLOAD_TOO_LARGE');
    if (status === 415) return new HubError('HUB_ERR_UNSUPPORTED_MEDIA_TYPE', { reason: error.message });
    return new HubError('HUB_ERR_BAD_REQUEST', { reason: error.message });
  }
  // The database restarting is not our bug: the client may retry, and /ready says not ready meanwhile.
  if (isDatabaseUnavailable(error)) return new HubError('HUB_ERR_UNAVAILABLE', { reason: 'The database is not reachable; try again shortly.' }, undefined, { 'retry-after': '5' });
  return new HubError('HUB_ERR_INTERNAL', { requestId: request.id });
}

/** The error and not-found handlers. Register on the root instance so every route shares them. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.addSchema(errorResponseSchema);
  app.addHook('onRoute', documentErrors);
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const hubError = toHubError(error, request);
    if (hubError.code === 'HUB_ERR_INTERNAL') request.log.error({ err: error }, 'request failed');
    return send(reply, hubError);
  });
  app.setNotFoundHandler((request, reply) => send(reply, new HubError('HUB_ERR_ROUTE_NOT_FOUND', { method: request.method, url: request.url.split('?')[0] })));
}

/** Every documented route answers a bad request and an internal error with the error schema. */
function documentErrors(route: RouteOptions): void {
  if (!route.schema || route.schema.hide) return;
  const responses = (route.schema.response ?? {}) as Record<string, unknown>;
  route.schema.response = {
    400: { description: 'The request is not valid (HUB_ERR_VALIDATION names the field).', ...errorRef },
    500: { description: 'Internal error (HUB_ERR_INTERNAL); the details are in the log.', ...errorRef },
    ...responses,
  };
}

/**
 * Errors Fastify raises before routing (a URL with malformed percent-encoding or invalid UTF-8): answered with
 * the error schema like every other error. Pass as Fastify's `frameworkErrors` option.
 */
export function frameworkError(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const reason = error.code === 'FST_ERR_BAD_URL' ? 'The URL is not valid: it has malformed percent-encoding or invalid UTF-8.' : error.message;
  void send(reply, new HubError('HUB_ERR_BAD_REQUEST', { reason }));
}
