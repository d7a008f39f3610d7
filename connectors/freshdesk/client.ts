/**
 * The Freshdesk API v2 client: the shared HTTP client with Basic auth (the API key as user name, `X`
 * as password) under `https://<domain>.freshdesk.com/api/v2`, and the rate-limit headers read after
 * every call: when `X-RateLimit-Remaining` falls to the reserve, the next call waits for the minute to turn.
 * https://developers.freshdesk.com/api/#authentication
 * https://developers.freshdesk.com/api/#ratelimit
 */
import type { Logger } from '../../hub/log.js';
import { createHttpClient, type HttpClient } from '../kit/http.js';
import type { FreshdeskConfig } from './config.gen.js';

export interface FreshdeskClientOptions {
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

export const freshdeskBaseUrl = (config: FreshdeskConfig) => `https://${config.domain}.freshdesk.com/api/v2`;

export function createFreshdeskHttp(config: FreshdeskConfig, options: FreshdeskClientOptions = {}): HttpClient {
  const basic = Buffer.from(`${config.api_key}:X`).toString('base64');
  return createHttpClient({
    baseURL: freshdeskBaseUrl(config),
    headers: { Authorization: `Basic ${basic}`, Accept: 'application/json' },
    connector: 'freshdesk',
    sleep: options.sleep,
    log: options.log,
  });
}

// Freshdesk's limits are per minute; it sends no reset time, so a whole window is waited.
export const rateWindowMs = 60_000;

/** How long to wait after a response before the next call: a window when the remaining calls reach the reserve, else 0. */
export function rateLimitWait(headers: Record<string, unknown>, reserve: number): number {
  const remaining = Number(headers['x-ratelimit-remaining']);
  return Number.isFinite(remaining) && headers['x-ratelimit-remaining'] !== '' && remaining <= reserve ? rateWindowMs : 0;
}
