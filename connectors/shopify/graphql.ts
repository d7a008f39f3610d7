/**
 * Shopify Admin GraphQL over the shared HTTP client, with the cost-based throttle: every response
 * reports `extensions.cost.throttleStatus`, and the next query waits until the bucket holds the points
 * the last one asked for. A `THROTTLED` error (HTTP 200) is retried after the same wait; 429 and 5xx
 * are retried by the HTTP client, honouring `Retry-After`.
 * https://shopify.dev/docs/api/usage/rate-limits#graphql-admin-api-rate-limits
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../hub/log.js';
import { ConnectorError } from '../kit/contract.js';
import { createHttpClient, type HttpClient } from '../kit/http.js';
import type { ShopifyConfig } from './config.gen.js';

export interface ShopifyClientOptions {
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
  /** Retries of a THROTTLED answer before the run fails (transient); default 8. */
  maxThrottleRetries?: number;
}

interface ThrottleStatus {
  maximumAvailable: number;
  currentlyAvailable: number;
  restoreRate: number;
}

interface GraphqlResponse<T> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
  extensions?: { cost?: { requestedQueryCost?: number; actualQueryCost?: number; throttleStatus?: ThrottleStatus } };
}

export interface ShopifyGraphql {
  http: HttpClient;
  query<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
}

export const shopDomain = (shop: string) => (shop.includes('.') ? shop : `${shop}.myshopify.com`);

export function createShopifyHttp(config: ShopifyConfig, options: ShopifyClientOptions = {}): HttpClient {
  return createHttpClient({
    baseURL: config.base_url ?? `https://${shopDomain(config.shop)}/admin/api/${config.api_version ?? '2025-01'}`,
    headers: { 'X-Shopify-Access-Token': config.access_token, 'Content-Type': 'application/json', Accept: 'application/json' },
    connector: 'shopify',
    sleep: options.sleep,
    log: options.log,
  });
}

/** A GraphQL client that paces itself by the cost the API reports. One per run: it carries the bucket's last state. */
export function createShopifyGraphql(http: HttpClient, options: ShopifyClientOptions = {}): ShopifyGraphql {
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const maxThrottleRetries = options.maxThrottleRetries ?? 8;
  let bucket: ThrottleStatus | undefined;
  let lastCost = 0;

  // Seconds until the bucket has `cost` points again, at its restore rate (points per second).
  const waitFor = (cost: number) =>
    bucket && bucket.currentlyAvailable < cost && bucket.restoreRate > 0
      ? Math.ceil(((cost - bucket.currentlyAvailable) / bucket.restoreRate) * 1000)
      : 0;

  async function query<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const before = waitFor(lastCost);
      if (before > 0) {
        options.log?.info({ connector: 'shopify', waitMs: before, bucket }, 'waiting for the query cost bucket');
        await sleep(before);
      }
      const response = await http.post<GraphqlResponse<T>>('/graphql.json', { query, variables });
      const body = response.data;
      const cost = body?.extensions?.cost;
      if (cost?.throttleStatus) bucket = cost.throttleStatus;
      if (cost?.requestedQueryCost !== undefined) lastCost = cost.requestedQueryCost;
      const errors = body?.errors ?? [];
      if (errors.some((error) => error.extensions?.code === 'THROTTLED')) {
        if (attempt > maxThrottleRetries) {
          throw new ConnectorError(`shopify: still throttled after ${attempt} attempts; the run resumes from its checkpoint`, 'transient');
        }
        // Before the next attempt the bucket must hold the cost; with no report, wait a second.
        if (waitFor(lastCost) === 0) await sleep(1000);
        continue;
      }
      if (errors.length) {
        const codes = errors.map((error) => error.extensions?.code).filter(Boolean);
        const message = `shopify: GraphQL errors: ${errors.map((error) => error.message).join('; ').slice(0, 300)}`;
        if (codes.includes('ACCESS_DENIED')) throw new ConnectorError(`${message} (the access token lacks a scope)`, 'config');
        if (codes.includes('INTERNAL_SERVER_ERROR') && attempt <= maxThrottleRetries) {
          await sleep(1000 * attempt);
          continue;
        }
        throw new ConnectorError(message, 'system');
      }
      if (!body || body.data === undefined || body.data === null) throw new ConnectorError('shopify: a GraphQL response had no data', 'system');
      return body.data;
    }
  }

  return { http, query };
}

/** The numeric id at the end of a GID: `gid://shopify/Customer/207119551` → `207119551`. */
export function legacyId(gid: unknown): string | undefined {
  if (typeof gid !== 'string') return undefined;
  return /^gid:\/\/shopify\/\w+\/(\d+)$/.exec(gid)?.[1];
}
