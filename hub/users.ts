/**
 * Accounts of people who sign in to the workspace (stewards, admins) and their sessions. Passwords are hashed
 * with scrypt (a per-user salt; the cost travels with the hash so it can be raised later); a session is a random
 * token in the `hub_session` cookie, of which only the SHA-256 is stored.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Pool } from './db/database.js';
import type { HubConfig } from './config.js';
import type { Scope } from './auth.js';
import { HubError } from './errors.js';
import * as sql from './users-sql.js';

export const ROLES = ['steward', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The API scopes of each role: the workspace calls the same routes as machines do with keys. */
export const ROLE_SCOPES: Record<Role, Scope[]> = { steward: ['read', 'steward'], admin: ['read', 'steward', 'admin'] };

export const MIN_PASSWORD_LENGTH = 12;
const USERNAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

// --- passwords -------------------------------------------------------------------------------------------------

/** Today's cost: N = 2^15 takes about 50–100 ms and 32 MiB. Stored hashes keep the cost they were made with. */
const SCRYPT_COST = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;

function scryptKey(password: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  // Node's default memory cap (32 MiB) is just below what N = 2^15, r = 8 needs (128 · N · r bytes).
  const options: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r };
  return new Promise((resolve, reject) => scrypt(password, salt, KEY_LENGTH, options, (error, key) => (error ? reject(error) : resolve(key))));
}

const encode = (cost: { N: number; r: number; p: number }, salt: Buffer, key: Buffer) =>
  `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  return encode(SCRYPT_COST, salt, await scryptKey(password, salt, SCRYPT_COST));
}

/** `outdated`: the hash was made with a lower cost than today's, so it should be made again while the password is at hand. */
export async function verifyPassword(password: string, stored: string): Promise<{ ok: boolean; outdated: boolean }> {
  const parts = stored.split('$');
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (parts.length !== 6 || parts[0] !== 'scrypt' || ![N, r, p].every((value) => Number.isInteger(value) && value > 0)) return { ok: false, outdated: false };
  const expected = Buffer.from(parts[5], 'base64url');
  const key = await scryptKey(password, Buffer.from(parts[4], 'base64url'), { N, r, p });
  const ok = key.length === expected.length && timingSafeEqual(key, expected);
  return { ok, outdated: N < SCRYPT_COST.N || r < SCRYPT_COST.r || p < SCRYPT_COST.p };
}

/** An unknown username is checked against this, so it costs one scrypt like a known one (no timing oracle). */
const NOBODY_HASH = encode(SCRYPT_COST, Buffer.alloc(SALT_LENGTH), Buffer.alloc(KEY_LENGTH));

// --- accounts ---------------------------------------------------------------------------------------------------

function checkNewPassword(password: string): void {
  if ([...password].length < MIN_PASSWORD_LENGTH) throw new Error(`The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`);
}

export async function createUser(pool: Pool, username: string, role: string, password: string): Promise<{ id: string }> {
  if (!USERNAME.test(username)) throw new Error(`Username '${username}' is not valid: use 1–63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit.`);
  if (!ROLES.includes(role as Role)) throw new Error(`Role '${role}' is not known: use ${ROLES.join(' or ')}.`);
  checkNewPassword(password);
  const { rows } = await pool.query<{ id: string }>(sql.insertUser(username, role, await hashPassword(password)));
  if (rows.length === 0) throw new Error(`There is already a user '${username}'.`);
  return rows[0];
}

export interface UserListing {
  username: string;
  role: Role;
  created_at: Date;
  disabled_at: Date | null;
}

export async function listUsers(pool: Pool): Promise<UserListing[]> {
  return (await pool.query<UserListing>(sql.listUsers())).rows;
}

/** Disables an account; its sessions end at once. Returns how many sessions ended. */
export async function disableUser(pool: Pool, username: string): Promise<{ sessions: number }> {
  return sessionsEnded(await pool.query(sql.disableUser(username)), username);
}

/** Enables a disabled account again: it signs in with its password (its old sessions stay ended). */
export async function enableUser(pool: Pool, username: string): Promise<void> {
  const { rowCount } = await pool.query(sql.enableUser(username));
  if (rowCount === 0) throw new Error(`There is no user '${username}'.`);
}

/** Gives an account a new password (one forgotten, or known to others); its sessions end, as they began with the old one. */
export async function setPassword(pool: Pool, username: string, password: string): Promise<{ sessions: number }> {
  checkNewPassword(password);
  return sessionsEnded(await pool.query(sql.setPassword(username, await hashPassword(password))), username);
}

function sessionsEnded({ rows }: { rows: { users: number; sessions: number }[] }, username: string): { sessions: number } {
  if (rows[0].users === 0) throw new Error(`There is no user '${username}'.`);
  return { sessions: rows[0].sessions };
}

// --- sessions ---------------------------------------------------------------------------------------------------

export const SESSION_COOKIE = 'hub_session';

export interface SessionLifetimes {
  idleSeconds: number;
  absoluteSeconds: number;
}

export function sessionLifetimes(config: Pick<HubConfig, 'sessions'>): SessionLifetimes {
  return {
    idleSeconds: Math.round((config.sessions?.idle_timeout_hours ?? 12) * 3600),
    absoluteSeconds: Math.round((config.sessions?.absolute_timeout_days ?? 7) * 86_400),
  };
}

export interface SignedInUser {
  id: string;
  username: string;
  role: Role;
  csrfToken: string;
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Throttle: this many failed sign-ins for one username within the window answer 429 until the oldest leaves it. */
const SIGN_IN_MAX_FAILURES = 10;
const SIGN_IN_WINDOW_SECONDS = 15 * 60;

/**
 * Checks the credentials and opens a session. Wrong username and wrong password answer alike, after the same work;
 * a username with too many recent failures is refused before its password is looked at.
 */
export async function signIn(pool: Pool, lifetimes: SessionLifetimes, username: string, password: string): Promise<{ token: string; user: SignedInUser }> {
  const name = username.trim().toLowerCase();
  const { rows: throttle } = await pool.query<{ failures: number; retry_after_seconds: number | null }>(
    sql.recentSignInFailures(name, SIGN_IN_WINDOW_SECONDS, SIGN_IN_MAX_FAILURES),
  );
  if (throttle[0].failures >= SIGN_IN_MAX_FAILURES) {
    const seconds = String(Math.max(1, Math.ceil(throttle[0].retry_after_seconds ?? SIGN_IN_WINDOW_SECONDS)));
    throw new HubError('HUB_ERR_SIGN_IN_THROTTLED', { seconds }, undefined, { 'retry-after': seconds });
  }
  const { rows } = await pool.query<{ id: string; username: string; role: Role; password_hash: string }>(sql.findUserForSignIn(name));
  const account = rows[0];
  const { ok, outdated } = await verifyPassword(password, account?.password_hash ?? NOBODY_HASH);
  if (!account || !ok) {
    await pool.query(sql.recordSignInFailure(name, SIGN_IN_WINDOW_SECONDS));
    throw new HubError('HUB_ERR_BAD_CREDENTIALS');
  }
  if (outdated) await pool.query(sql.updatePasswordHash(account.id, await hashPassword(password)));
  await pool.query(sql.clearSignInFailures(name));
  await pool.query(sql.deleteExpiredSessions(lifetimes.idleSeconds));
  const token = randomBytes(32).toString('base64url');
  const csrfToken = randomBytes(32).toString('base64url');
  await pool.query(sql.insertSession(hashToken(token), account.id, csrfToken, lifetimes.absoluteSeconds));
  return { token, user: { id: account.id, username: account.username, role: account.role, csrfToken } };
}

/** Only touch last_seen_at once a minute: reading the API should not write on every request. */
const TOUCH_INTERVAL_MS = 60_000;

/** The user of a live session, or undefined (unknown token, ended, expired, idle too long, account disabled). */
export async function findSession(pool: Pool, lifetimes: SessionLifetimes, token: string): Promise<SignedInUser | undefined> {
  const tokenHash = hashToken(token);
  const { rows } = await pool.query<{ user_id: string; username: string; role: Role; csrf_token: string; last_seen_at: Date }>(sql.findSession(tokenHash, lifetimes.idleSeconds));
  const session = rows[0];
  if (!session) return undefined;
  if (Date.now() - session.last_seen_at.getTime() > TOUCH_INTERVAL_MS) await pool.query(sql.touchSession(tokenHash));
  return { id: session.user_id, username: session.username, role: session.role, csrfToken: session.csrf_token };
}

export async function endSession(pool: Pool, token: string): Promise<void> {
  await pool.query(sql.deleteSession(hashToken(token)));
}
