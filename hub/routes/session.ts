/** Sign-in sessions of the workspace: sign in (sets the `hub_session` cookie), who am I, sign out. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Hub } from '../sync.js';
import { HubError, errorRef } from '../errors.js';
import { cookieValue } from '../auth.js';
import { endSession, MIN_PASSWORD_LENGTH, ROLE_SCOPES, ROLES, SESSION_COOKIE, sessionLifetimes, signIn, type SignedInUser } from '../users.js';
import { noQuery } from './schemas.js';

const sessionInfo = {
  description: 'The signed-in user, the scopes of their role, and the token that every write with the cookie sends as `X-CSRF-Token`.',
  type: 'object',
  additionalProperties: false,
  required: ['user', 'scopes', 'csrf_token'],
  properties: {
    user: {
      type: 'object',
      additionalProperties: false,
      required: ['username', 'role'],
      properties: { username: { type: 'string' }, role: { type: 'string', enum: ROLES } },
    },
    scopes: { type: 'array', items: { type: 'string', enum: ['read', 'steward', 'admin'] } },
    csrf_token: { type: 'string' },
  },
  examples: [{ user: { username: 'ada', role: 'steward' }, scopes: ['read', 'steward'], csrf_token: 'p1Lk0cX3v9Qe2n…' }],
} as const;

const describeSession = (user: SignedInUser) => ({ user: { username: user.username, role: user.role }, scopes: ROLE_SCOPES[user.role], csrf_token: user.csrfToken });

/** HttpOnly: no script reads it; SameSite=Strict: no other site sends it; Secure when the hub is reached over https. */
function sessionCookie(request: FastifyRequest, value: string, maxAgeSeconds: number): string {
  return [`${SESSION_COOKIE}=${value}`, 'HttpOnly', 'SameSite=Strict', 'Path=/', `Max-Age=${maxAgeSeconds}`, ...(request.protocol === 'https' ? ['Secure'] : [])].join('; ');
}

/** GET and DELETE are about a session: an API key has none. */
function signedInUser(request: FastifyRequest): SignedInUser {
  if (!request.user) throw new HubError('HUB_ERR_UNAUTHENTICATED', {}, undefined, { 'www-authenticate': 'Bearer realm="customer-hub"' });
  return request.user;
}

const setCookieHeader = { 'set-cookie': { type: 'string', description: '`hub_session=…; HttpOnly; SameSite=Strict; Path=/; Max-Age=…` (and `Secure` over https).' } };

export async function sessionRoutes(app: FastifyInstance, options: { hub: Hub }): Promise<void> {
  const { hub } = options;
  const lifetimes = sessionLifetimes(hub.config);

  app.post<{ Body: { username: string; password: string } }>(
    '/v1/session',
    {
      // Public: it checks a credential of its own, the password.
      config: { scope: 'public' },
      schema: {
        operationId: 'signIn',
        tags: ['session'],
        summary: 'Sign in with a username and password',
        description: `Sets the \`hub_session\` cookie. A wrong username and a wrong password answer alike. After 10 failed sign-ins for a username within 15 minutes it answers 429 until the oldest of them is 15 minutes old. Accounts: \`hub users create <username> --role steward|admin\` (passwords of at least ${MIN_PASSWORD_LENGTH} characters).`,
        querystring: noQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password'],
          properties: { username: { type: 'string', minLength: 1, maxLength: 63 }, password: { type: 'string', minLength: 1, maxLength: 1024 } },
          examples: [{ username: 'ada', password: 'correct horse battery staple' }],
        },
        response: {
          200: { ...sessionInfo, headers: setCookieHeader },
          401: { description: 'The username or the password is wrong, or the account is disabled (HUB_ERR_BAD_CREDENTIALS).', ...errorRef },
          429: {
            description: 'Too many failed sign-ins for this username (HUB_ERR_SIGN_IN_THROTTLED); `Retry-After` says in how many seconds to retry.',
            headers: { 'retry-after': { type: 'integer' } },
            ...errorRef,
          },
        },
      },
    },
    async (request, reply) => {
      const { token, user } = await signIn(hub.pool, lifetimes, request.body.username, request.body.password);
      request.log.info({ user: user.username }, 'signed in');
      return reply.header('set-cookie', sessionCookie(request, token, lifetimes.absoluteSeconds)).send(describeSession(user));
    },
  );

  app.get(
    '/v1/session',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getSession',
        tags: ['session'],
        summary: 'The signed-in user (after a reload, the workspace asks who is signed in)',
        description: 'Needs the session cookie; an API key has no session (401).',
        querystring: noQuery,
        response: { 200: sessionInfo },
      },
    },
    async (request) => describeSession(signedInUser(request)),
  );

  app.delete(
    '/v1/session',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'signOut',
        tags: ['session'],
        summary: 'Sign out: the session ends and the cookie is cleared',
        description: 'Needs the session cookie and its `X-CSRF-Token`.',
        querystring: noQuery,
        response: { 204: { description: 'Signed out.', type: 'null', headers: setCookieHeader } },
      },
    },
    async (request, reply: FastifyReply) => {
      signedInUser(request);
      const token = cookieValue(request.headers.cookie, SESSION_COOKIE);
      if (token) await endSession(hub.pool, token);
      return reply.code(204).header('set-cookie', sessionCookie(request, '', 0)).send();
    },
  );
}
