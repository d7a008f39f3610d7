/**
 * Rate limits per API key (and per signed-in user, whatever the number of their sessions): HUB_RATE_LIMIT_PER_MINUTE
 * requests a minute (default 6000; 0 turns the limit off), counted
 * in this process's memory (each API process counts on its own). Over the limit a key gets 429 HUB_ERR_RATE_LIMITED
 * with `Retry-After` in seconds. Public routes are not limited; a request without a valid key is turned away by the
 * auth guard before it is counted.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { HubError, errorRef } from './errors.js';

export const DEFAULT_RATE_LIMIT_PER_MINUTE = 6000;

export function rateLimitPerMinute(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.HUB_RATE_LIMIT_PER_MINUTE;
  if (raw === undefined || raw.trim() === '') return DEFAULT_RATE_LIMIT_PER_MINUTE;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`HUB_RATE_LIMIT_PER_MINUTE must be a whole number ≥ 0 (0: no limit); got '${raw}'.`);
  return value;
}

/** Documents the 429 on every route that an API key calls. */
function documentRoute(route: RouteOptions): void {
  if (!route.schema || route.schema.hide || route.config?.scope === 'public' || route.config?.scope === undefined) return;
  route.schema.response = {
    429: {
      description: 'This API key exceeded its requests per minute (HUB_ERR_RATE_LIMITED); `Retry-After` says in how many seconds to retry.',
      headers: { 'retry-after': { type: 'integer' } },
      ...errorRef,
    },
    ...(route.schema.response as object | undefined),
  };
}

/** Call on the root instance after the auth guard (its onRequest hook runs first) and before the routes. */
export async function registerRateLimit(app: FastifyInstance, perMinute = rateLimitPerMinute()): Promise<void> {
  app.addHook('onRoute', documentRoute);
  if (perMinute === 0) return;
  await app.register(rateLimit, {
    max: perMinute,
    timeWindow: 60_000,
    // Route hooks run after the root's onRequest hooks, so the key is known here.
    keyGenerator: (request: FastifyRequest) => (request.apiKey ? `key:${request.apiKey.id}` : request.user ? `user:${request.user.id}` : `ip:${request.ip}`),
    allowList: (request: FastifyRequest) => request.routeOptions.config.scope === 'public' || request.is404,
    errorResponseBuilder: (_request, context) =>
      new HubError('HUB_ERR_RATE_LIMITED', { max: context.max, seconds: Math.ceil(context.ttl / 1000) }, undefined, { 'retry-after': String(Math.ceil(context.ttl / 1000)) }),
  });
}
