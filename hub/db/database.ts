/** Connections: a `pg` pool on DATABASE_URL, or on the embedded server when none is given. */
import pg from 'pg';
import { startEmbeddedPostgres } from './embedded.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** A SQL statement as the modules' `sql.ts` files build them (pg-boss's plans style). */
export interface Statement {
  text: string;
  values: unknown[];
  /**
   * Prepared once per connection under this name and then only bound and executed: for the statements of the
   * incremental path whose planning costs as much as their execution. The text under a name never changes.
   */
  name?: string;
}

export interface Database {
  url: string;
  pool: Pool;
  close(): Promise<void>;
}

const EMBEDDED_DATABASE = 'hub';

export function databaseUrlWithName(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createDatabaseIfMissing(serverUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`create database ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

export function createPool(url: string, max = 10): Pool {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 10_000 });
  // An idle client losing its connection (a database restart) must not crash the process.
  pool.on('error', () => undefined);
  // Nor a checked-out client between two queries (a session lock held through a sync run): its next query fails
  // instead, with an error isDatabaseUnavailable recognises.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** Opens DATABASE_URL, or starts the embedded server under `hubDir` and opens its `hub` database. */
export async function openDatabase(options: { url?: string; hubDir: string; log?: (message: string) => void }): Promise<Database> {
  if (options.url) {
    const pool = createPool(options.url);
    return { url: options.url, pool, close: () => pool.end() };
  }
  const embedded = await startEmbeddedPostgres(options.hubDir, options.log);
  await createDatabaseIfMissing(embedded.adminUrl, EMBEDDED_DATABASE);
  const url = databaseUrlWithName(embedded.adminUrl, EMBEDDED_DATABASE);
  const pool = createPool(url);
  return {
    url,
    pool,
    close: async () => {
      await pool.end();
      await embedded.stop();
    },
  };
}

/**
 * True for errors that mean the database is away (restarting, unreachable), not that a statement is wrong:
 * work that meets one is retried later rather than failed.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  if (typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03')) return true;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT') return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(message ?? '');
}

/**
 * Runs `work` in one transaction. With `attempts` above one, a transaction that PostgreSQL ends for a deadlock runs
 * again from the start (resolution passes over one customer can close a cycle, see identity-resolution/sql.ts
 * lockForPass): `work` must then change nothing but the database until it returns.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>, options: { attempts?: number } = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await pool.connect();
    try {
      await client.query('begin');
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      if ((error as { code?: string }).code !== DEADLOCK || attempt >= (options.attempts ?? 1)) throw error;
    } finally {
      client.release();
    }
  }
}

/** PostgreSQL's error code for a transaction it ended to break a deadlock. */
const DEADLOCK = '40P01';

/** Attempts of a transaction that stores and resolves records (a page of a sync, a group of pushed records). */
export const STORE_ATTEMPTS = 3;
