/** SQL of accounts, sessions and failed sign-ins (hub/users.ts), as named statements. */
import type { Statement } from './db/database.js';

export const insertUser = (username: string, role: string, passwordHash: string): Statement => ({
  text: 'insert into hub_user (username, role, password_hash) values ($1, $2, $3) on conflict (username) do nothing returning id',
  values: [username, role, passwordHash],
});

export const findUserForSignIn = (username: string): Statement => ({
  text: 'select id, username, role, password_hash from hub_user where username = $1 and disabled_at is null',
  values: [username],
});

export const updatePasswordHash = (userId: string, passwordHash: string): Statement => ({
  text: 'update hub_user set password_hash = $2 where id = $1',
  values: [userId, passwordHash],
});

/** Never the password hash: this is what leaves the module. */
export const listUsers = (): Statement => ({
  text: 'select username, role, created_at, disabled_at from hub_user order by username',
  values: [],
});

/** Runs `update` (of the hub_user named $1) and ends the sessions of the account it changed, in one statement. */
const updateUserEndingSessions = (update: string, values: unknown[]): Statement => ({
  text: `with changed as (${update} returning id)
         , ended as (delete from user_session where user_id in (select id from changed) returning 1)
         select (select count(*) from changed)::int as users, (select count(*) from ended)::int as sessions`,
  values,
});

export const disableUser = (username: string): Statement =>
  updateUserEndingSessions('update hub_user set disabled_at = coalesce(disabled_at, now()) where username = $1', [username]);

export const setPassword = (username: string, passwordHash: string): Statement =>
  updateUserEndingSessions('update hub_user set password_hash = $2 where username = $1', [username, passwordHash]);

export const enableUser = (username: string): Statement => ({
  text: 'update hub_user set disabled_at = null where username = $1',
  values: [username],
});

export const insertSession = (tokenHash: string, userId: string, csrfToken: string, absoluteSeconds: number): Statement => ({
  text: `insert into user_session (token_hash, user_id, csrf_token, expires_at)
         values ($1, $2, $3, now() + make_interval(secs => $4))`,
  values: [tokenHash, userId, csrfToken, absoluteSeconds],
});

/** The live session of an enabled account: before its absolute end and seen within the idle timeout. */
export const findSession = (tokenHash: string, idleSeconds: number): Statement => ({
  text: `select s.user_id, s.csrf_token, s.last_seen_at, u.username, u.role
         from user_session s join hub_user u on u.id = s.user_id
         where s.token_hash = $1 and u.disabled_at is null
           and s.expires_at > now() and s.last_seen_at > now() - make_interval(secs => $2)`,
  values: [tokenHash, idleSeconds],
});

export const touchSession = (tokenHash: string): Statement => ({
  text: 'update user_session set last_seen_at = now() where token_hash = $1',
  values: [tokenHash],
});

export const deleteSession = (tokenHash: string): Statement => ({
  text: 'delete from user_session where token_hash = $1',
  values: [tokenHash],
});

/** Sessions past their absolute end or idle too long: swept when someone signs in, so the table stays small. */
export const deleteExpiredSessions = (idleSeconds: number): Statement => ({
  text: 'delete from user_session where expires_at <= now() or last_seen_at <= now() - make_interval(secs => $1)',
  values: [idleSeconds],
});

/**
 * Failures of a username within the window, and when the throttle lifts: the moment the `max`-th newest failure
 * leaves the window (null while there are fewer than `max`).
 */
export const recentSignInFailures = (username: string, windowSeconds: number, max: number): Statement => ({
  text: `with recent as (
           select failed_at from sign_in_failure where username = $1 and failed_at > now() - make_interval(secs => $2))
         select (select count(*) from recent)::int as failures,
                (select extract(epoch from failed_at + make_interval(secs => $2) - now())
                 from recent order by failed_at desc offset $3 - 1 limit 1)::float8 as retry_after_seconds`,
  values: [username, windowSeconds, max],
});

/** Records a failure and forgets the ones that no longer count for anybody. */
export const recordSignInFailure = (username: string, windowSeconds: number): Statement => ({
  text: `with forgotten as (delete from sign_in_failure where failed_at <= now() - make_interval(secs => $2))
         insert into sign_in_failure (username) values ($1)`,
  values: [username, windowSeconds],
});

export const clearSignInFailures = (username: string): Statement => ({
  text: 'delete from sign_in_failure where username = $1',
  values: [username],
});
