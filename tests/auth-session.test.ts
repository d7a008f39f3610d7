/** Issue 7: accounts, sign-in sessions, CSRF on writes, roles as scopes, and the `hub users` commands. */
import { createHash, randomBytes, scryptSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createApiKey } from '../hub/auth.js';
import { buildApp } from '../hub/app.js';
import { checkConfig } from '../hub/config.js';
import { registerSources, type Hub } from '../hub/sync.js';
import { createUser, disableUser, listUsers, verifyPassword } from '../hub/users.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';
import { bearer } from './helpers/app.js';
import { runHub } from './helpers/cli.js';
import { goldenOf, ingest } from './helpers/pipeline.js';

let db: TestDatabase;
let hub: Hub;
let app: FastifyInstance;
let dir: string;
let customer: string;
let adminKey: string;
/** Every log line the app wrote, and every answer it gave, to look for secrets in. */
const logLines: string[] = [];
const answers: string[] = [];

const PASSWORDS = { ada: 'ada-correct-horse-1', root: 'root-battery-staple-2', eve: 'eve-another-secret-3', tim: 'tim-throttled-pass-4' };

beforeAll(async () => {
  db = await createTestDatabase();
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
  hub = { pool: db.pool, config: checkConfig({ sources: [] }, 'test.yaml'), log };
  await registerSources(db.pool, hub.config);
  await ingest(db.pool, 'crm', [{ id: 'c1', given: 'Jane', family: 'Doe', email: 'jane@example.com', updated: '2025-01-01T10:00:00Z' }]);
  customer = (await goldenOf(db.pool, 'crm', 'c1'))!;
  adminKey = await createApiKey(db.pool, 'ops', ['admin']);
  app = await buildApp(hub, { logger: true });
  // Stands in for a TLS socket: light-my-request has none.
  app.addHook('onRequest', async (request) => {
    if (request.headers['x-test-tls']) (request.raw.socket as { encrypted?: boolean }).encrypted = true;
  });
  app.addHook('onSend', async (_request, _reply, payload) => {
    if (typeof payload === 'string') answers.push(payload);
    return payload;
  });
  await app.ready();
  await createUser(db.pool, 'ada', 'steward', PASSWORDS.ada);
  await createUser(db.pool, 'root', 'admin', PASSWORDS.root);
  await createUser(db.pool, 'tim', 'steward', PASSWORDS.tim);
  dir = await mkdtemp(join(tmpdir(), 'hub-users-'));
  await writeFile(join(dir, 'hub.config.yaml'), 'sources: []\n');
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Session {
  cookie: string;
  token: string;
  csrf: string;
}

async function signIn(username: string, password: string, headers: Record<string, string> = {}): Promise<{ response: LightMyRequestResponse; session?: Session }> {
  const response = await app.inject({ method: 'POST', url: '/v1/session', payload: { username, password }, headers });
  if (response.statusCode !== 200) return { response };
  const token = /^hub_session=([^;]+);/.exec(String(response.headers['set-cookie']))![1];
  return { response, session: { cookie: `hub_session=${token}`, token, csrf: response.json().csrf_token } };
}

async function signedIn(username: keyof typeof PASSWORDS): Promise<Session> {
  const { session } = await signIn(username, PASSWORDS[username]);
  return session!;
}

const withSession = (session: Session, csrf: string | null = session.csrf) => ({ cookie: `theme=dark; ${session.cookie}`, ...(csrf === null ? {} : { 'x-csrf-token': csrf }) });

const consent = (session: Session, csrf?: string | null) =>
  app.inject({ method: 'PUT', url: `/v1/customers/${customer}/consent`, headers: withSession(session, csrf), payload: { email_marketing: 'opt_out' } });

const sessionRow = async (token: string) => (await db.pool.query('select * from user_session where token_hash = $1', [createHash('sha256').update(token).digest('hex')])).rows[0];

// Each command starts a process that loads TypeScript: seconds each on a busy machine.
describe('hub users', { timeout: 180_000 }, () => {
  const cli = (args: string[], env: Record<string, string> = {}, input?: string) => runHub(['--config', join(dir, 'hub.config.yaml'), 'users', ...args], { DATABASE_URL: db.url, ...env }, input);

  it('creates an account with the password from stdin or an environment variable, lists it, and never shows the hash', async () => {
    const created = await cli(['create', 'grace', '--role', 'admin'], {}, 'grace-piped-password\n');
    expect(created).toMatchObject({ code: 0, stdout: "created user 'grace' (admin)\n" });
    const scripted = await cli(['create', 'alan', '--role', 'steward', '--password-env', 'ALAN_PASSWORD'], { ALAN_PASSWORD: 'alan-from-the-env' });
    expect(scripted.code).toBe(0);
    expect((await signIn('grace', 'grace-piped-password')).response.statusCode).toBe(200);
    expect((await signIn('alan', 'alan-from-the-env')).response.json().user).toEqual({ username: 'alan', role: 'steward' });

    const { rows } = await db.pool.query<{ password_hash: string }>("select password_hash from hub_user where username = 'grace'");
    expect(rows[0].password_hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    const listed = await cli(['list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^alan\tsteward\tcreated \S+$/m);
    expect(listed.stdout).toMatch(/^grace\tadmin\tcreated \S+$/m);
    expect(listed.stdout).not.toContain(rows[0].password_hash.split('$')[5]);
  });

  it('refuses a short password, a bad role, a bad or taken username, with the reason', async () => {
    const short = await cli(['create', 'kurt', '--role', 'steward'], {}, 'too-short\n');
    expect(short).toMatchObject({ code: 1, stderr: expect.stringContaining('The password must be at least 12 characters long.') });
    const unset = await cli(['create', 'kurt', '--role', 'steward', '--password-env', 'NOT_SET_ANYWHERE']);
    expect(unset).toMatchObject({ code: 1, stderr: expect.stringContaining('Environment variable NOT_SET_ANYWHERE is not set.') });
    await expect(createUser(db.pool, 'kurt', 'owner', 'long-enough-password')).rejects.toThrow("Role 'owner' is not known: use steward or admin.");
    await expect(createUser(db.pool, 'ada', 'steward', 'long-enough-password')).rejects.toThrow("There is already a user 'ada'.");
    await expect(createUser(db.pool, 'Kurt Gödel', 'steward', 'long-enough-password')).rejects.toThrow(/Username 'Kurt Gödel' is not valid/);
    expect((await db.pool.query("select count(*)::int as n from hub_user where username like 'kurt%'")).rows[0].n).toBe(0);
  });

  it('disables an account: its sessions stop working at once and it cannot sign in', async () => {
    await createUser(db.pool, 'eve', 'steward', PASSWORDS.eve);
    const session = await signedIn('eve');
    expect((await app.inject({ url: '/v1/session', headers: withSession(session) })).statusCode).toBe(200);
    const disabled = await cli(['disable', 'eve']);
    expect(disabled).toMatchObject({ code: 0, stdout: "disabled user 'eve'; 1 session(s) ended\n" });
    expect((await app.inject({ url: '/v1/session', headers: withSession(session) })).statusCode).toBe(401);
    expect((await signIn('eve', PASSWORDS.eve)).response.json().error.code).toBe('HUB_ERR_BAD_CREDENTIALS');
    expect((await listUsers(db.pool)).find((user) => user.username === 'eve')).toMatchObject({ role: 'steward', disabled_at: expect.any(Date) });
    await expect(disableUser(db.pool, 'nobody')).rejects.toThrow("There is no user 'nobody'.");

    const enabled = await cli(['enable', 'eve']);
    expect(enabled).toMatchObject({ code: 0, stdout: "enabled user 'eve'\n" });
    expect((await signIn('eve', PASSWORDS.eve)).response.statusCode).toBe(200);
    // The sessions that ended with the account stay ended.
    expect((await app.inject({ url: '/v1/session', headers: withSession(session) })).statusCode).toBe(401);
    expect((await listUsers(db.pool)).find((user) => user.username === 'eve')).toMatchObject({ disabled_at: null });
    expect(await cli(['enable', 'nobody'])).toMatchObject({ code: 1, stderr: expect.stringContaining("There is no user 'nobody'.") });
  });

  it('sets a new password: the old one stops working and so do the sessions begun with it', async () => {
    await createUser(db.pool, 'max', 'steward', 'max-old-password-1');
    const { session } = await signIn('max', 'max-old-password-1');

    const changed = await cli(['password', 'max'], {}, 'max-new-password-2\n');

    expect(changed).toMatchObject({ code: 0, stdout: "set a new password for 'max'; 1 session(s) ended\n" });
    expect((await app.inject({ url: '/v1/session', headers: withSession(session!) })).statusCode).toBe(401);
    expect((await signIn('max', 'max-old-password-1')).response.json().error.code).toBe('HUB_ERR_BAD_CREDENTIALS');
    expect((await signIn('max', 'max-new-password-2')).response.statusCode).toBe(200);
    expect(await cli(['password', 'max'], {}, 'short\n')).toMatchObject({ code: 1, stderr: expect.stringContaining('The password must be at least 12 characters long.') });
    expect(await cli(['password', 'nobody'], {}, 'long-enough-password\n')).toMatchObject({ code: 1, stderr: expect.stringContaining("There is no user 'nobody'.") });
  });
});

describe('POST /v1/session', () => {
  it('signs in: the role, its scopes, a CSRF token, and an HttpOnly SameSite=Strict cookie', async () => {
    const { response, session } = await signIn('ada', PASSWORDS.ada);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ user: { username: 'ada', role: 'steward' }, scopes: ['read', 'steward'], csrf_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(response.headers['set-cookie']).toBe(`hub_session=${session!.token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=604800`);
    // Only the token's hash is stored.
    const row = await sessionRow(session!.token);
    expect(row).toMatchObject({ csrf_token: session!.csrf });
    expect(JSON.stringify(row)).not.toContain(session!.token);
    expect(row.expires_at.getTime() - row.created_at.getTime()).toBe(7 * 86_400_000);
  });

  it('marks the cookie Secure when the request came over https', async () => {
    const { response } = await signIn('ada', PASSWORDS.ada, { 'x-test-tls': '1' });
    expect(response.headers['set-cookie']).toMatch(/; HttpOnly; SameSite=Strict; Path=\/; Max-Age=604800; Secure$/);
  });

  it('believes X-Forwarded-Proto and X-Forwarded-For only from the proxies server.trust_proxy names', async () => {
    const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' };
    const ignored = await signIn('ada', PASSWORDS.ada, forwarded);
    expect(ignored.response.headers['set-cookie']).not.toMatch(/Secure/);
    expect(logLines.join('')).not.toContain('203.0.113.7');

    // app.inject's requests come from 127.0.0.1: the proxy here.
    const behindProxy = await buildApp({ ...hub, config: checkConfig({ server: { trust_proxy: '127.0.0.1' }, sources: [] }, 'test.yaml') }, { logger: true });
    try {
      const response = await behindProxy.inject({ method: 'POST', url: '/v1/session', payload: { username: 'ada', password: PASSWORDS.ada }, headers: forwarded });
      expect(response.statusCode).toBe(200);
      expect(response.headers['set-cookie']).toMatch(/; Secure$/);
      expect(logLines.filter((line) => line.includes('"remoteAddress":"203.0.113.7"'))).not.toHaveLength(0);
    } finally {
      await behindProxy.close();
    }
  });

  it('answers a wrong password and an unknown user alike, after the same slow hash', async () => {
    const timed = async (username: string, password: string) => {
      const started = performance.now();
      const { response } = await signIn(username, password);
      return { response, ms: performance.now() - started };
    };
    const wrong = await timed('ada', 'not-the-password');
    const unknown = await timed('nobody', 'not-the-password');
    for (const { response, ms } of [wrong, unknown]) {
      expect(response.statusCode).toBe(401);
      expect(response.json()).toEqual({ error: { code: 'HUB_ERR_BAD_CREDENTIALS', message: 'The username or the password is wrong.' } });
      expect(response.headers['set-cookie']).toBeUndefined();
      // scrypt at N = 2^15 takes tens of milliseconds; a lookup alone takes a few.
      expect(ms).toBeGreaterThan(15);
    }
  });

  it('throttles a username after 10 failures in 15 minutes with 429 and Retry-After, also for the right password', async () => {
    for (let attempt = 0; attempt < 10; attempt += 1) expect((await signIn('tim', `wrong-${attempt}`)).response.statusCode).toBe(401);
    for (const password of ['wrong-again', PASSWORDS.tim]) {
      const { response } = await signIn('tim', password);
      expect(response.statusCode).toBe(429);
      expect(response.json().error.code).toBe('HUB_ERR_SIGN_IN_THROTTLED');
      // The oldest failure was a few seconds ago (each costs a slow hash).
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(600);
      expect(Number(response.headers['retry-after'])).toBeLessThanOrEqual(900);
    }
    // Another username is not affected.
    expect((await signIn('ada', PASSWORDS.ada)).response.statusCode).toBe(200);
    // Once the oldest failure is 15 minutes old, nine remain: the right password gets in, and the count starts over.
    await db.pool.query("update sign_in_failure set failed_at = now() - interval '16 minutes' where failed_at = (select min(failed_at) from sign_in_failure where username = 'tim')");
    expect((await signIn('tim', PASSWORDS.tim)).response.statusCode).toBe(200);
    expect((await db.pool.query("select count(*)::int as n from sign_in_failure where username = 'tim'")).rows[0].n).toBe(0);
  });

  it('rejects a body without a password by name', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/session', payload: { username: 'ada' } });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details.field).toBe('body/password');
  });
});

describe('GET and DELETE /v1/session', () => {
  it('answers the signed-in user after a reload; 401 without a session, with a bad cookie, or with an API key', async () => {
    const { response, session } = await signIn('root', PASSWORDS.root);
    const restored = await app.inject({ url: '/v1/session', headers: withSession(session!, null) });
    expect(restored.statusCode).toBe(200);
    expect(restored.json()).toEqual(response.json());
    expect(restored.json().scopes).toEqual(['read', 'steward', 'admin']);
    for (const headers of [{}, { cookie: 'hub_session=not-a-token' }, { cookie: `other=${session!.token}` }, bearer(adminKey)]) {
      const refused = await app.inject({ url: '/v1/session', headers });
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error.code).toBe('HUB_ERR_UNAUTHENTICATED');
    }
  });

  it('signs out: the session row is deleted, the cookie cleared, and the old cookie no longer works', async () => {
    const session = await signedIn('ada');
    expect((await app.inject({ method: 'DELETE', url: '/v1/session', headers: withSession(session, null) })).json().error.code).toBe('HUB_ERR_CSRF');
    const signedOut = await app.inject({ method: 'DELETE', url: '/v1/session', headers: withSession(session) });
    expect(signedOut.statusCode).toBe(204);
    expect(signedOut.headers['set-cookie']).toBe('hub_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0');
    expect(await sessionRow(session.token)).toBeUndefined();
    expect((await app.inject({ url: '/v1/session', headers: withSession(session) })).statusCode).toBe(401);
  });

  it('ends a session past its absolute end or idle for longer than the idle timeout', async () => {
    const expired = await signedIn('ada');
    await db.pool.query("update user_session set expires_at = now() - interval '1 second' where csrf_token = $1", [expired.csrf]);
    expect((await app.inject({ url: '/v1/session', headers: withSession(expired) })).statusCode).toBe(401);
    const idle = await signedIn('ada');
    await db.pool.query("update user_session set last_seen_at = now() - interval '11 hours 59 minutes' where csrf_token = $1", [idle.csrf]);
    expect((await app.inject({ url: '/v1/session', headers: withSession(idle) })).statusCode).toBe(200);
    // That request counted as activity; twelve idle hours later it is over.
    await db.pool.query("update user_session set last_seen_at = now() - interval '12 hours 1 minute' where csrf_token = $1", [idle.csrf]);
    expect((await app.inject({ url: '/v1/session', headers: withSession(idle) })).statusCode).toBe(401);
  });

  it('touches last_seen_at at most once a minute', async () => {
    const session = await signedIn('ada');
    const seen = async () => (await sessionRow(session.token)).last_seen_at as Date;
    const first = await seen();
    await app.inject({ url: '/v1/session', headers: withSession(session) });
    expect(await seen()).toEqual(first);
    await db.pool.query("update user_session set last_seen_at = now() - interval '2 minutes' where csrf_token = $1", [session.csrf]);
    await app.inject({ url: '/v1/session', headers: withSession(session) });
    expect((await seen()).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe('a session calls the API with the scopes of its role', () => {
  it('lets a steward write only with the CSRF token, and records the user as the actor', async () => {
    const session = await signedIn('ada');
    for (const csrf of [null, 'wrong-token', `${session.csrf}x`]) {
      const refused = await consent(session, csrf);
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.code).toBe('HUB_ERR_CSRF');
    }
    // Another session's token is no good either.
    expect((await consent(session, (await signedIn('root')).csrf)).statusCode).toBe(403);
    expect((await db.pool.query("select count(*)::int as n from raw_record where source = 'hub'")).rows[0].n).toBe(0);
    const accepted = await consent(session);
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json().attributes.email_marketing.status).toBe('opt_out');
    const { rows } = await db.pool.query("select data->>'actor' as actor from raw_record where source = 'hub' and external_id = $1", [customer]);
    expect(rows).toEqual([{ actor: 'user:ada' }]);
  });

  it('answers 403 to a steward on an admin route; an admin passes', async () => {
    const steward = await signedIn('ada');
    const refused = await app.inject({ url: `/v1/customers/${customer}/export`, headers: withSession(steward) });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error).toEqual({ code: 'HUB_ERR_FORBIDDEN', message: "User 'ada' (role steward) lacks the 'admin' scope." });
    const admin = await signedIn('root');
    expect((await app.inject({ url: `/v1/customers/${customer}/export`, headers: withSession(admin) })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/customers?limit=1', headers: withSession(steward, null) })).statusCode).toBe(200);
  });

  it('prefers an API key to a cookie, and a key needs no CSRF token', async () => {
    const steward = await signedIn('ada');
    const response = await app.inject({ url: `/v1/customers/${customer}/export`, headers: { ...bearer(adminKey), cookie: steward.cookie } });
    expect(response.statusCode).toBe(200);
  });

  it('counts the rate limit per user, over all their sessions', async () => {
    process.env.HUB_RATE_LIMIT_PER_MINUTE = '3';
    const limited = await buildApp(hub);
    delete process.env.HUB_RATE_LIMIT_PER_MINUTE;
    await limited.ready();
    try {
      const [first, second, other] = [await signedIn('ada'), await signedIn('ada'), await signedIn('root')];
      const statuses = [];
      for (const session of [first, second, first, second]) statuses.push((await limited.inject({ url: '/v1/customers', headers: withSession(session) })).statusCode);
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect((await limited.inject({ url: '/v1/customers', headers: withSession(other) })).statusCode).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('secrets', () => {
  it('never shows a password, its hash, a session token or a CSRF token in an answer body or a log line', async () => {
    const session = await signedIn('root');
    await app.inject({ url: '/v1/customers?limit=5', headers: withSession(session) });
    const { rows } = await db.pool.query<{ password_hash: string }>('select password_hash from hub_user');
    const logs = logLines.join('');
    expect(logs).toContain('signed in');
    const everything = logs + answers.join('\n');
    for (const secret of [...Object.values(PASSWORDS), ...rows.map((row) => row.password_hash.split('$')[5]), session.token]) expect(everything).not.toContain(secret);
    expect(logs).not.toContain(session.csrf);
    expect(logs).not.toContain('scrypt$');
  });

  it('verifies a hash by the cost stored with it, and makes a cheaper one again at sign-in', async () => {
    const password = 'made-with-less-cost';
    const salt = randomBytes(16);
    const cheap = `scrypt$16384$8$1$${salt.toString('base64url')}$${scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 }).toString('base64url')}`;
    expect(await verifyPassword(password, cheap)).toEqual({ ok: true, outdated: true });
    expect(await verifyPassword('wrong-password!', cheap)).toEqual({ ok: false, outdated: true });
    expect(await verifyPassword(password, 'not-a-hash')).toEqual({ ok: false, outdated: false });
    await createUser(db.pool, 'old', 'steward', 'placeholder-password');
    await db.pool.query("update hub_user set password_hash = $1 where username = 'old'", [cheap]);
    expect((await signIn('old', password)).response.statusCode).toBe(200);
    const { rows } = await db.pool.query<{ password_hash: string }>("select password_hash from hub_user where username = 'old'");
    expect(rows[0].password_hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(await verifyPassword(password, rows[0].password_hash)).toEqual({ ok: true, outdated: false });
  });
});
