/**
 * The WooCommerce REST API v3 client: the shared HTTP client with Basic auth (consumer key as user,
 * secret as password) under `<url>/wp-json/wc/v3`.
 * https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication-over-https
 */
import type { Logger } from '../../hub/log.js';
import { createHttpClient, type HttpClient } from '../kit/http.js';
import type { WoocommerceConfig } from './config.gen.js';

export interface WooClientOptions {
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
}

export function createWooHttp(config: WoocommerceConfig, options: WooClientOptions = {}): HttpClient {
  const basic = Buffer.from(`${config.consumer_key}:${config.consumer_secret}`).toString('base64');
  return createHttpClient({
    baseURL: `${config.url.replace(/\/+$/, '')}/wp-json/wc/v3`,
    headers: { Authorization: `Basic ${basic}`, Accept: 'application/json' },
    connector: 'woocommerce',
    sleep: options.sleep,
    log: options.log,
  });
}
