/**
 * A real Dovecot for the IMAP tests: an unprivileged configuration in a temporary folder, listening on 127.0.0.1
 * on a free port, with a passwd-file user and a Maildir the test writes. Started in the foreground (-F) so the test
 * stops exactly the process it started. With `oauth2IntrospectionUrl`, Dovecot's oauth2 passdb also accepts XOAUTH2
 * logins whose bearer token that endpoint introspects as active (RFC 7662); `startAuthorizationServer` is such an
 * endpoint, with a token endpoint that issues the tokens.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export const hasDovecot = spawnSync('sh', ['-c', 'command -v dovecot']).status === 0;

export interface Dovecot {
  port: number;
  user: string;
  password: string;
  /** Writes a message into a folder (INBOX or e.g. Sent) of the user's Maildir. */
  deliver(folder: string, name: string, message: string): void;
  /** Sets a folder's UIDVALIDITY, as a restored or rebuilt mailbox would change it. */
  setUidValidity(folder: string, value: number): void;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (child.exitCode !== null) throw new Error(`dovecot exited (${child.exitCode}): ${log()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.end(() => resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`dovecot did not listen on ${port}: ${log()}`);
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) chownTree(join(path, entry.name), uid, gid);
    else chownSync(join(path, entry.name), uid, gid);
  }
}

export interface DovecotOptions {
  /** Where Dovecot's oauth2 passdb introspects XOAUTH2 bearer tokens (`introspection_mode = post`). */
  oauth2IntrospectionUrl?: string;
}

export async function startDovecot(options: DovecotOptions = {}): Promise<Dovecot> {
  const dir = mkdtempSync(join(tmpdir(), 'hub-dovecot-'));
  const port = await freePort();
  const user = 'support@example.com';
  const password = 'secret-imap-password';
  // Dovecot refuses to run its login processes or to access mail as root: as root, use its packaged
  // unprivileged users and a mail owner that is not root (nobody); otherwise everything runs as the current user.
  const me = userInfo();
  const root = me.uid === 0;
  const mailUid = root ? 65534 : me.uid;
  const mailGid = root ? 65534 : me.gid;
  for (const sub of ['run', 'state', 'mail', 'home']) mkdirSync(join(dir, sub));
  writeFileSync(join(dir, 'passwd'), `${user}:{PLAIN}${password}\n`);
  // The auth process runs as Dovecot's internal user: it must reach the passwd file.
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'passwd'), 0o644);
  const oauth2 = options.oauth2IntrospectionUrl;
  if (oauth2) {
    // Dovecot 2.3's oauth2 passdb: POST token=… to the introspection URL; the token is valid when the answer has
    // active = true and names the user who logs in (https://doc.dovecot.org/2.3/configuration_manual/authentication/oauth2/).
    writeFileSync(
      join(dir, 'oauth2.conf.ext'),
      `introspection_mode = post\nintrospection_url = ${oauth2}\nforce_introspection = yes\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n`,
    );
    chmodSync(join(dir, 'oauth2.conf.ext'), 0o644);
  }
  writeFileSync(
    join(dir, 'dovecot.conf'),
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
instance_name = hub-test-${port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
# Refused logins (tests refuse some on purpose) answer at once; Dovecot still delays the next login from the same
# address by its auth penalty (2 s, then 4 s, …).
auth_failure_delay = 0
auth_mechanisms = plain login${oauth2 ? ' xoauth2' : ''}
default_internal_user = ${root ? 'dovecot' : me.username}
default_internal_group = ${root ? 'dovecot' : me.username}
default_login_user = ${root ? 'dovenull' : me.username}
first_valid_uid = 0
mail_location = maildir:${dir}/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/passwd
}
${
  oauth2
    ? `passdb {
  driver = oauth2
  mechanisms = xoauth2
  args = ${dir}/oauth2.conf.ext
}`
    : ''
}
userdb {
  driver = static
  args = uid=${mailUid} gid=${mailGid} home=${dir}/home/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
`,
  );
  const maildir = join(dir, 'mail', user);
  const folderDir = (folder: string) => (folder === 'INBOX' ? maildir : join(maildir, `.${folder}`));
  const deliver = (folder: string, name: string, message: string) => {
    const target = folderDir(folder);
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(target, sub), { recursive: true });
    writeFileSync(join(target, 'cur', `${name}.hub:2,S`), message.replace(/\r?\n/g, '\r\n'));
    if (root) chownTree(join(dir, 'mail'), mailUid, mailGid);
  };
  deliver('INBOX', '0000000000.empty', '');
  rmSync(join(maildir, 'cur', '0000000000.empty.hub:2,S'));
  if (root) {
    chownTree(join(dir, 'mail'), mailUid, mailGid);
    chownTree(join(dir, 'home'), mailUid, mailGid);
  }

  const child = spawn('dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const log = () => {
    try {
      return output + spawnSync('cat', [join(dir, 'dovecot.log')]).stdout.toString();
    } catch {
      return output;
    }
  };
  await waitForPort(port, child, log);

  return {
    port,
    user,
    password,
    deliver,
    setUidValidity(folder, value) {
      const result = spawnSync('doveadm', ['-c', join(dir, 'dovecot.conf'), 'mailbox', 'update', '-u', user, '--uid-validity', String(value), folder]);
      if (result.status !== 0) throw new Error(`doveadm mailbox update failed: ${result.stderr.toString()}`);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface AuthorizationServer {
  /** RFC 7662 token introspection, for Dovecot's oauth2 passdb. */
  introspectionUrl: string;
  /** RFC 6749 token endpoint: the refresh_token and client_credentials grants. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /** Issues an access token for the user that stays active until `revoke`. */
  issue(): string;
  /** Makes every access token issued so far inactive (as an expired or revoked token). */
  revoke(): void;
  /** The grants the token endpoint answered, in order. */
  grants: string[];
  stop(): Promise<void>;
}

async function formBody(request: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const answer = (response: ServerResponse, status: number, body: object) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

/** A small OAuth2 authorization server on 127.0.0.1 issuing opaque access tokens for one mailbox user. */
export async function startAuthorizationServer(user: string): Promise<AuthorizationServer> {
  const clientId = 'hub-imap-client';
  const clientSecret = randomBytes(12).toString('hex');
  const refreshToken = `refresh-${randomBytes(12).toString('hex')}`;
  const active = new Set<string>();
  const grants: string[] = [];
  const issue = () => {
    const token = `access-${randomBytes(16).toString('hex')}`;
    active.add(token);
    return token;
  };
  const server = createHttpServer(async (request, response) => {
    const form = await formBody(request);
    if (request.method === 'POST' && request.url === '/introspect') return answer(response, 200, active.has(form.get('token') ?? '') ? { active: true, username: user } : { active: false });
    if (request.method !== 'POST' || request.url !== '/token') return answer(response, 404, { error: 'not_found' });
    // Client authentication in the body (client_secret_post), as Google and Microsoft accept.
    if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) return answer(response, 401, { error: 'invalid_client' });
    const grant = form.get('grant_type') ?? '';
    grants.push(grant);
    if (grant === 'refresh_token' && form.get('refresh_token') !== refreshToken) return answer(response, 400, { error: 'invalid_grant', error_description: 'The refresh token has expired or been revoked.' });
    if (grant !== 'refresh_token' && grant !== 'client_credentials') return answer(response, 400, { error: 'unsupported_grant_type' });
    return answer(response, 200, { access_token: issue(), token_type: 'Bearer', expires_in: 3600 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    introspectionUrl: `${base}/introspect`,
    tokenUrl: `${base}/token`,
    clientId,
    clientSecret,
    refreshToken,
    issue,
    revoke: () => active.clear(),
    grants,
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Dovecot's HTTP client keeps its connection open.
        server.closeAllConnections();
      }),
  };
}
