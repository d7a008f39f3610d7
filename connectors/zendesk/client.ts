/**
 * The Zendesk Support API client: the shared HTTP client with API-token Basic auth
 * (`{email}/token:{api_token}`) under `https://<subdomain>.zendesk.com`, and the rate budget of the
 * incremental export endpoints (10 requests a minute, 30 with the High Volume add-on).
 * https://developer.zendesk.com/api-reference/introduction/security-and-auth/#api-token
 * https://developer.zendesk.com/api-reference/ticketing/ticket-management/incremental_exports/#rate-limits
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../hub/log.js';
import { createHttpClient, type HttpClient } from '../kit/http.js';
import type { ZendeskConfig } from './config.gen.js';

export interface ZendeskClientOptions {
  /** Waits between retries and for the rate budget; tests pass a fake. */
  sleep?: (ms: number) => Promise<void>;
  /** The clock, as epoch milliseconds; tests pass a fake. */
  now?: () => number;
  log?: Logger;
}

export const zendeskBaseUrl = (config: ZendeskConfig) => `https://${config.subdomain}.zendesk.com`;

export function createZendeskHttp(config: ZendeskConfig, options: ZendeskClientOptions = {}): HttpClient {
  const basic = Buffer.from(`${config.email}/token:${config.api_token}`).toString('base64');
  return createHttpClient({
    baseURL: zendeskBaseUrl(config),
    headers: { Authorization: `Basic ${basic}`, Accept: 'application/json' },
    connector: 'zendesk',
    sleep: options.sleep,
    log: options.log,
  });
}

/**
 * A sliding-window budget: at most `limit` requests in any `windowMs`. `take()` waits until one more
 * request fits. Waiting here rather than on a 429 keeps the account's other integrations unthrottled.
 */
export class RateBudget {
  private readonly sent: number[] = [];

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => delay(ms),
  ) {}

  async take(): Promise<void> {
    for (;;) {
      const now = this.now();
      while (this.sent.length && this.sent[0] <= now - this.windowMs) this.sent.shift();
      if (this.sent.length < this.limit) {
        this.sent.push(now);
        return;
      }
      await this.sleep(this.sent[0] + this.windowMs - now);
    }
  }
}
