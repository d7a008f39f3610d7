/**
 * Authentication of declarative REST sources. Static schemes become headers or a query parameter;
 * OAuth2 client credentials (RFC 6749 §4.4) fetch a token and cache it until shortly before it expires.
 */
import type { Logger } from '../../hub/log.js';
import { ConnectorError } from '../kit/contract.js';
import { createHttpClient } from '../kit/http.js';
import type { RestAuth } from './definition.js';

export interface AuthOptions {
  connector: string;
  sleep?: (ms: number) => Promise<void>;
  log?: Logger;
  now?: () => number;
}

export interface Signer {
  /** Headers and query parameters to add to one request. */
  sign(): Promise<{ headers: Record<string, string>; params: Record<string, string> }>;
  /** Drops a cached token (after the API refused it). */
  invalidate(): void;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

// One cache per process: sources sharing a client share its token, and runs reuse it.
const tokens = new Map<string, CachedToken>();
const refreshMarginMs = 60_000;

export function clearTokenCache(): void {
  tokens.clear();
}

export function createSigner(auth: RestAuth | undefined, options: AuthOptions): Signer {
  const none = { headers: {}, params: {} };
  if (!auth || auth.type === 'none') return { sign: async () => none, invalidate: () => {} };
  if (auth.type === 'bearer') return { sign: async () => ({ headers: { Authorization: `Bearer ${auth.token}` }, params: {} }), invalidate: () => {} };
  if (auth.type === 'basic') {
    const basic = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
    return { sign: async () => ({ headers: { Authorization: `Basic ${basic}` }, params: {} }), invalidate: () => {} };
  }
  if (auth.type === 'api_key') {
    const signed = auth.in === 'query' ? { headers: {}, params: { [auth.name]: auth.value } } : { headers: { [auth.name]: auth.value }, params: {} };
    return { sign: async () => signed, invalidate: () => {} };
  }
  const now = options.now ?? Date.now;
  const key = `${auth.token_url}\u0000${auth.client_id}\u0000${(auth.scopes ?? []).join(' ')}`;
  return {
    async sign() {
      const cached = tokens.get(key);
      if (cached && cached.expiresAt - refreshMarginMs > now()) return { headers: { Authorization: `Bearer ${cached.token}` }, params: {} };
      const form = new URLSearchParams({ grant_type: 'client_credentials', ...(auth.scopes?.length ? { scope: auth.scopes.join(' ') } : {}), ...auth.extra_params });
      const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
      if ((auth.client_auth ?? 'basic') === 'basic') {
        // RFC 6749 §2.3.1: both parts form-encoded before joining.
        headers.Authorization = `Basic ${Buffer.from(`${encodeURIComponent(auth.client_id)}:${encodeURIComponent(auth.client_secret)}`).toString('base64')}`;
      } else {
        form.set('client_id', auth.client_id);
        form.set('client_secret', auth.client_secret);
      }
      const http = createHttpClient({ baseURL: auth.token_url, headers, connector: options.connector, sleep: options.sleep, log: options.log });
      const response = await http.post<{ access_token?: string; expires_in?: number; token_type?: string }>('', form.toString());
      const token = response.data?.access_token;
      if (typeof token !== 'string' || !token) throw new ConnectorError(`${options.connector}: the token endpoint answered without an access_token`, 'config');
      // Without expires_in the token is kept for an hour, a common lifetime; a refusal drops it earlier.
      tokens.set(key, { token, expiresAt: now() + (Number(response.data.expires_in) || 3600) * 1000 });
      return { headers: { Authorization: `Bearer ${token}` }, params: {} };
    },
    invalidate: () => tokens.delete(key),
  };
}
