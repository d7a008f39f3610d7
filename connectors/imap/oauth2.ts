/**
 * OAuth2 access tokens for XOAUTH2 logins (Gmail, Microsoft 365), from the configured token endpoint: the
 * refresh-token grant (RFC 6749 §6) when a refresh token is configured, else the client-credentials grant (§4.4).
 * Tokens live in this process's memory only, until shortly before they expire: never in the stream state (which is
 * stored in the database), in messages or in logs.
 */
import { createHash } from 'node:crypto';
import { createHttpClient } from '../kit/http.js';
import { ConnectorError, type ConnectorContext } from '../kit/contract.js';
import type { ImapOAuth2 } from './config.gen.js';

interface CachedToken {
  accessToken: string;
  expiresAt: number;
  /** A refresh token the endpoint rotated (Microsoft does): used instead of the configured one from then on. */
  refreshToken?: string;
}

/** Token endpoint answer (RFC 6749 §5.1). */
interface TokenResponse {
  access_token?: unknown;
  expires_in?: unknown;
  refresh_token?: unknown;
}

/** A token this close to its expiry is fetched again: a sync that starts with it must still log in. */
const EXPIRY_MARGIN_MS = 60_000;
const DEFAULT_LIFETIME_S = 3600;

const tokens = new Map<string, CachedToken>();

// One cache entry per client and grant; hashed so that no secret is kept as a map key.
const cacheKey = (oauth2: ImapOAuth2) => createHash('sha256').update(JSON.stringify([oauth2.token_url, oauth2.client_id, oauth2.refresh_token ?? '', oauth2.scope ?? ''])).digest('hex');

/**
 * An access token for the mailbox: the cached one while it is valid (`cached: true`), else a new one. `fresh` skips
 * the cache, after the server refused a cached token (revoked before its expiry).
 */
export async function oauth2AccessToken(oauth2: ImapOAuth2, ctx: ConnectorContext, fresh = false): Promise<{ accessToken: string; cached: boolean }> {
  const key = cacheKey(oauth2);
  const known = tokens.get(key);
  if (!fresh && known && known.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return { accessToken: known.accessToken, cached: true };
  const refreshToken = known?.refreshToken ?? oauth2.refresh_token;
  if (refreshToken === undefined && oauth2.client_secret === undefined) {
    throw new ConnectorError(`The IMAP source ${ctx.source}: oauth2 needs refresh_token, or client_secret for the client-credentials grant.`, 'config');
  }
  const form = new URLSearchParams({ grant_type: refreshToken === undefined ? 'client_credentials' : 'refresh_token', client_id: oauth2.client_id });
  if (refreshToken !== undefined) form.set('refresh_token', refreshToken);
  if (oauth2.client_secret !== undefined) form.set('client_secret', oauth2.client_secret);
  if (oauth2.scope !== undefined) form.set('scope', oauth2.scope);
  const http = createHttpClient({ baseURL: oauth2.token_url, connector: `the token endpoint of the IMAP source ${ctx.source}`, log: ctx.log, maxRetries: 3 });
  const response = await http.post<TokenResponse>(oauth2.token_url, form.toString(), { headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' } });
  const body = response.data;
  if (typeof body?.access_token !== 'string' || body.access_token === '') {
    throw new ConnectorError(`The token endpoint of the IMAP source ${ctx.source} answered without an access_token.`, 'config');
  }
  const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_LIFETIME_S;
  const rotated = typeof body.refresh_token === 'string' && body.refresh_token !== '' ? body.refresh_token : known?.refreshToken;
  tokens.set(key, { accessToken: body.access_token, expiresAt: Date.now() + lifetime * 1000, refreshToken: rotated });
  return { accessToken: body.access_token, cached: false };
}
