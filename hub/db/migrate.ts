/**
 * Ordered SQL migrations (hub/db/migrations/NNNN_name.sql), applied once each, all pending ones in one transaction,
 * under an advisory lock so that several hub processes starting together apply them once.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Pool } from './database.js';
import { inTransaction } from './database.js';

const migrationsDir = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
const MIGRATION_LOCK = 7_301_001;

export interface Migration {
  version: string;
  sql: string;
}

export async function listMigrations(): Promise<Migration[]> {
  const files = (await readdir(migrationsDir)).filter((file) => file.endsWith('.sql')).sort();
  return Promise.all(files.map(async (file) => ({ version: file.replace(/\.sql$/, ''), sql: await readFile(join(migrationsDir, file), 'utf8') })));
}

/** Applies the pending migrations and returns the versions it applied. */
export async function migrate(pool: Pool, options: { dryRun?: boolean } = {}): Promise<string[]> {
  const migrations = await listMigrations();
  return inTransaction(pool, async (client) => {
    await client.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('create table if not exists schema_migration (version text primary key, applied_at timestamptz not null default now())');
    const applied = new Set((await client.query<{ version: string }>('select version from schema_migration')).rows.map((row) => row.version));
    const known = new Set(migrations.map((migration) => migration.version));
    const unknown = [...applied].filter((version) => !known.has(version));
    if (unknown.length > 0) {
      throw new Error(`The database has migrations this hub does not know (${unknown.join(', ')}): it is newer than this hub. Upgrade the hub.`);
    }
    const pending = migrations.filter((migration) => !applied.has(migration.version));
    if (options.dryRun) return pending.map((migration) => migration.version);
    for (const migration of pending) {
      await client.query(migration.sql);
      await client.query('insert into schema_migration (version) values ($1)', [migration.version]);
    }
    return pending.map((migration) => migration.version);
  });
}
