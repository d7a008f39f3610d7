/**
 * `Idempotency-Key` on every POST: the first response to a key (per API key) is kept for a day and replayed to a
 * retry with the same request; the same key with another request is a 422, and one still running a 409. A client
 * can so retry a POST after a timeout without creating a second webhook or run.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Pool } from './db/database.js';
import { HubError, errorRef } from './errors.js';
import { stableStringify } from './stable-json.js';
import * as sql from './api-sql.js';

/** How long a key and its response are kept (pruned by the worker's housekeeping). */
export const IDEMPOTENCY_KEY_HOURS = 24;

const HEADER = 'idempotency-key';
/** Response headers worth replaying besides the body. */
const KEPT_HEADERS = ['location'];

declare module 'fastify' {
  interface FastifyRequest {
    /** The Idempotency-Key this request claimed: its response is stored when it is sent. */
    idempotencyKey?: string;
  }
}

function fingerprint(request: FastifyRequest): string {
  return createHash('sha256').update(`${request.method} ${request.url}\n${stableStringify(request.body ?? null)}`).digest('hex');
}

/** Documents the header and its answers on every POST route. */
function documentRoute(route: RouteOptions): void {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  if (!methods.includes('POST') || !route.schema || route.config?.scope === 'public') return;
  const headers = (route.schema.headers ?? { type: 'object', properties: {} }) as { type: string; properties: Record<string, unknown> };
  route.schema.headers = {
    ...headers,
    properties: {
      ...headers.properties,
      [HEADER]: {
        type: 'string',
        minLength: 1,
        maxLength: 255,
        description: `Makes the request safe to retry: the first response to this key is replayed (header \`Idempotent-Replayed: true\`) for ${IDEMPOTENCY_KEY_HOURS} hours.`,
      },
    },
  };
  route.schema.response = {
    409: { description: 'A request with this Idempotency-Key is still being processed (HUB_ERR_IDEMPOTENCY_IN_PROGRESS).', ...errorRef },
    422: { description: 'This Idempotency-Key was used with a different request (HUB_ERR_IDEMPOTENCY_MISMATCH).', ...errorRef },
    ...(route.schema.response as object | undefined),
  };
}

/** Installs the hooks. Call on the root instance after the auth guard, before registering routes. */
export function registerIdempotency(app: FastifyInstance, pool: Pool): void {
  app.addHook('onRoute', documentRoute);

  // After validation and authentication: a rejected request claims no key.
  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    const key = request.headers[HEADER];
    if (request.method !== 'POST' || typeof key !== 'string' || !request.apiKey) return;
    const print = fingerprint(request);
    const claimed = await pool.query(sql.claimIdempotencyKey(request.apiKey.id, key, print));
    if (claimed.rowCount) {
      request.idempotencyKey = key;
      return;
    }
    const { rows } = await pool.query<{ fingerprint: string; status_code: number | null; headers: Record<string, string> | null; body: string | null }>(
      sql.findIdempotencyKey(request.apiKey.id, key),
    );
    const stored = rows[0];
    if (stored && stored.fingerprint !== print) throw new HubError('HUB_ERR_IDEMPOTENCY_MISMATCH', { key });
    if (!stored || stored.status_code === null) throw new HubError('HUB_ERR_IDEMPOTENCY_IN_PROGRESS', { key });
    await reply
      .code(stored.status_code)
      .headers({ ...stored.headers, 'content-type': 'application/json; charset=utf-8', 'idempotent-replayed': 'true' })
      .send(stored.body ?? '');
    return reply;
  });

  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const key = request.idempotencyKey;
    if (key === undefined || !request.apiKey) return payload;
    request.idempotencyKey = undefined;
    // A server error is not an answer: the key is freed so that a retry runs again.
    if (reply.statusCode >= 500) {
      await pool.query(sql.releaseIdempotencyKey(request.apiKey.id, key));
      return payload;
    }
    const headers = Object.fromEntries(KEPT_HEADERS.flatMap((name) => (reply.hasHeader(name) ? [[name, String(reply.getHeader(name))]] : [])));
    await pool.query(sql.saveIdempotentResponse(request.apiKey.id, key, reply.statusCode, headers, typeof payload === 'string' ? payload : String(payload ?? '')));
    return payload;
  });
}
