/**
 * API keys and signed-in people, deny by default: every route declares `config.scope`, and a route without one
 * stops the hub at startup. A request authenticates with `Authorization: Bearer <key>` (keys are stored as SHA-256
 * hashes, so the table never holds a usable key) or with the `hub_session` cookie of a signed-in user (hub/users.ts),
 * whose role grants scopes; with the cookie, writes must also carry the session's CSRF token.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { Pool } from './db/database.js';
import { inTransaction } from './db/database.js';
import { HubError, errorRef } from './errors.js';
import * as sql from './api-sql.js';
import { findSession, ROLE_SCOPES, SESSION_COOKIE, sessionLifetimes, type SessionLifetimes, type SignedInUser } from './users.js';

export const SCOPES = ['read', 'steward', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export type RouteScope = Scope | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route: `public`, or the scope an API key needs. Required on every route. */
    scope?: RouteScope;
  }
  interface FastifyRequest {
    /** The key that authenticated the request (absent on public routes and with a session cookie). */
    apiKey?: { id: string; name: string; scopes: Scope[] };
    /** The signed-in user whose session cookie authenticated the request. */
    user?: SignedInUser;
    /** Who makes the request, as decisions and audit entries record it: `user:<username>` or `key:<key name>`. Set on every authenticated request. */
    actor?: string;
  }
}

/** Routes of plugins that cannot declare a scope (the Swagger UI), all public. */
const PUBLIC_PREFIXES = ['/docs'];

/** admin implies steward implies read. */
const RANK: Record<Scope, number> = { read: 1, steward: 2, admin: 3 };

export function hasScope(granted: readonly string[], needed: Scope): boolean {
  return granted.some((scope) => scope in RANK && RANK[scope as Scope] >= RANK[needed]);
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function newKey(): string {
  return `hub_${randomBytes(32).toString('base64url')}`;
}

/** Stores a new key and returns it; this is the only time the plain key exists. */
export async function createApiKey(pool: Pool, name: string, scopes: Scope[]): Promise<string> {
  return (await createApiKeyWithId(pool, name, scopes)).key;
}

/** As createApiKey, with the new key's id (what `hub keys create` prints, so that it can be revoked by id). */
export async function createApiKeyWithId(pool: Pool, name: string, scopes: Scope[]): Promise<{ id: string; key: string }> {
  const unknown = scopes.filter((scope) => !SCOPES.includes(scope));
  if (unknown.length || scopes.length === 0) throw new Error(`Scopes must be some of ${SCOPES.join(', ')}; got ${scopes.join(', ') || 'none'}.`);
  if (name.trim() === '' || /^[0-9]+$/.test(name)) throw new Error('A key needs a name that is not a number (keys are revoked by id or name).');
  const key = newKey();
  const { rows } = await pool.query<{ id: string }>(sql.insertApiKey(name, hashApiKey(key), [...new Set(scopes)]));
  return { id: rows[0].id, key };
}

/** Parses `read,steward` as given on the command line. */
export function parseScopes(list: string): Scope[] {
  return list.split(',').map((scope) => scope.trim()).filter(Boolean) as Scope[];
}

export class KeyNotFoundError extends Error {}

/**
 * Revokes the unrevoked key with this id, or with this name. A name several keys share is refused (listing their ids),
 * so that a revocation never hits more keys than meant.
 */
export async function revokeApiKey(pool: Pool, idOrName: string): Promise<{ id: string; name: string }> {
  const { rows } = await pool.query<{ id: string; name: string }>(sql.findActiveKeys(idOrName));
  // An all-digit argument that is some key's id wins over a key of that name.
  const byId = rows.filter((row) => row.id === idOrName);
  const matches = byId.length ? byId : rows;
  if (matches.length === 0) throw new KeyNotFoundError(`There is no unrevoked API key with id or name '${idOrName}'.`);
  if (matches.length > 1) throw new KeyNotFoundError(`Several API keys are named '${idOrName}' (ids ${matches.map((row) => row.id).join(', ')}); revoke one by id.`);
  const revoked = await pool.query<{ id: string; name: string }>(sql.revokeApiKeys([matches[0].id]));
  forgetKey(pool, matches[0].id);
  return revoked.rows[0];
}

/** Several hub processes may start together on an empty table: one of them creates the first key. */
const FIRST_KEY_LOCK = 7_301_101;

/**
 * With `envKey` (HUB_ADMIN_KEY): makes sure that key exists, unrevoked, with the admin scope (the environment wins).
 * Without: creates an admin key only when there is no key at all, and returns it so the caller shows it once.
 */
export async function ensureAdminKey(pool: Pool, envKey?: string): Promise<{ key?: string; created: boolean }> {
  if (envKey !== undefined && envKey !== '') {
    if (envKey.length < 20) throw new Error('HUB_ADMIN_KEY must be at least 20 characters long.');
    const { rows } = await pool.query<{ created: boolean }>(sql.upsertAdminKey('admin (HUB_ADMIN_KEY)', hashApiKey(envKey)));
    return { created: rows[0].created };
  }
  return inTransaction(pool, async (client) => {
    await client.query({ text: 'select pg_advisory_xact_lock($1)', values: [FIRST_KEY_LOCK] });
    const { rows } = await client.query<{ any: boolean }>(sql.anyApiKey());
    if (rows[0].any) return { created: false };
    const key = newKey();
    await client.query(sql.insertApiKey('admin (first start)', hashApiKey(key), ['admin']));
    return { key, created: true };
  });
}

function unauthenticated(reason?: string): HubError {
  const challenge = reason ? `Bearer realm="customer-hub", error="invalid_token"` : 'Bearer realm="customer-hub"';
  return new HubError('HUB_ERR_UNAUTHENTICATED', {}, undefined, { 'www-authenticate': challenge });
}

function checkRoute(route: RouteOptions): void {
  const config = (route.config ?? {}) as { scope?: unknown };
  if (config.scope === undefined && PUBLIC_PREFIXES.some((prefix) => route.url === prefix || route.url.startsWith(`${prefix}/`))) {
    route.config = { ...route.config, scope: 'public' };
    return;
  }
  if (config.scope !== 'public' && !SCOPES.includes(config.scope as Scope)) {
    throw new Error(`Route ${String(route.method)} ${route.url} declares no valid config.scope (public, ${SCOPES.join(', ')}); every route must.`);
  }
  // Document the answers of the guard on every protected route.
  if (config.scope !== 'public' && route.schema) {
    route.schema.response = {
      401: { description: 'No API key or session cookie, or not a valid one (HUB_ERR_UNAUTHENTICATED).', ...errorRef },
      403: {
        description: `The API key or the user's role lacks the '${String(config.scope)}' scope (HUB_ERR_FORBIDDEN); or a write with the session cookie has no valid X-CSRF-Token (HUB_ERR_CSRF).`,
        ...errorRef,
      },
      ...(route.schema.response as object | undefined),
    };
  }
}

/** Only touch last_used_at once a minute per key: a read API should not write on every request. */
const TOUCH_INTERVAL_MS = 60_000;

/** The value of one cookie in a Cookie header (RFC 6265 `name=value; name=value`). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const pair of header?.split(';') ?? []) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim();
  }
  return undefined;
}

/** Methods that change nothing need no CSRF token (and must stay that way). */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

interface KeyRow {
  id: string;
  name: string;
  scopes: string[];
  last_used_at: Date | null;
}

/**
 * Valid keys as read from the table, per database, for KEY_CACHE_MS: a read route then costs one round trip, not two.
 * A key revoked by this process stops at once; one revoked elsewhere (`hub keys revoke`, another hub process) stops
 * within KEY_CACHE_MS. Unknown keys are never cached (a guesser cannot fill the memory); at most KEY_CACHE_SIZE entries.
 */
const KEY_CACHE_MS = 5_000;
const KEY_CACHE_SIZE = 10_000;
const keyCaches = new WeakMap<Pool, Map<string, { key: KeyRow; until: number }>>();

async function findKey(pool: Pool, keyHash: string): Promise<KeyRow | undefined> {
  let cache = keyCaches.get(pool);
  if (!cache) keyCaches.set(pool, (cache = new Map()));
  const cached = cache.get(keyHash);
  if (cached && cached.until > Date.now()) return cached.key;
  const { rows } = await pool.query<KeyRow>(sql.findApiKey(keyHash));
  if (!rows[0]) {
    cache.delete(keyHash);
    return undefined;
  }
  if (cache.size >= KEY_CACHE_SIZE) cache.clear();
  cache.set(keyHash, { key: rows[0], until: Date.now() + KEY_CACHE_MS });
  return rows[0];
}

/** Forgets revoked keys in this process at once. */
function forgetKey(pool: Pool, id: string): void {
  const cache = keyCaches.get(pool);
  for (const [hash, entry] of cache ?? []) if (entry.key.id === id) cache!.delete(hash);
}

async function authenticateKey(pool: Pool, request: FastifyRequest, header: string, scope: Scope | undefined): Promise<void> {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw unauthenticated();
  const key = await findKey(pool, hashApiKey(match[1]));
  if (!key) throw unauthenticated('invalid');
  if (!scope || !hasScope(key.scopes, scope)) throw new HubError('HUB_ERR_FORBIDDEN', { who: 'This API key', scope: scope ?? 'unknown' });
  request.apiKey = { id: key.id, name: key.name, scopes: key.scopes as Scope[] };
  request.actor = `key:${key.name}`;
  if (!key.last_used_at || Date.now() - key.last_used_at.getTime() > TOUCH_INTERVAL_MS) {
    key.last_used_at = new Date();
    await pool.query(sql.touchApiKey(key.id));
  }
}

async function authenticateSession(pool: Pool, lifetimes: SessionLifetimes, request: FastifyRequest, token: string, scope: Scope | undefined): Promise<void> {
  const user = await findSession(pool, lifetimes, token);
  if (!user) throw unauthenticated('invalid');
  // SameSite=Strict already keeps the cookie off cross-site requests; the token also covers browsers that ignore it.
  const csrf = request.headers['x-csrf-token'];
  if (!SAFE_METHODS.has(request.method) && !(typeof csrf === 'string' && safeEqual(csrf, user.csrfToken))) throw new HubError('HUB_ERR_CSRF');
  if (!scope || !hasScope(ROLE_SCOPES[user.role], scope)) throw new HubError('HUB_ERR_FORBIDDEN', { who: `User '${user.username}' (role ${user.role})`, scope: scope ?? 'unknown' });
  request.user = user;
  request.actor = `user:${user.username}`;
}

function safeEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Installs the guard. Call before registering any route, on the root instance. */
export function registerAuth(app: FastifyInstance, pool: Pool, lifetimes: SessionLifetimes = sessionLifetimes({})): void {
  app.addHook('onRoute', checkRoute);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const scope = request.routeOptions.config.scope;
    // Unmatched URLs have no route config: they fall through to the not-found handler.
    if (scope === 'public' || request.is404) return;
    // A key wins over a cookie: a script is never bound to a browser's session.
    const header = request.headers.authorization;
    if (header) return authenticateKey(pool, request, header, scope);
    const token = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (!token) throw unauthenticated();
    return authenticateSession(pool, lifetimes, request, token, scope);
  });
}
