/**
 * API test fixtures: rows inserted with plain SQL into a migrated test database (they follow the schema's
 * keys and checks), a `Hub` around its pool, and the built app.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Pool } from '../../hub/db/database.js';
import type { SourceConfig } from '../../hub/config.js';
import type { Hub } from '../../hub/sync.js';
import type { CanonicalRecord } from '../../openapi/generated/canonical-record.gen.js';
import { silentLogger } from '../../hub/log.js';
import { buildApp } from '../../hub/app.js';

export function testHub(pool: Pool, sources: SourceConfig[]): Hub {
  return { pool, config: { sources, baseDir: '/tmp', path: '/tmp/hub.config.yaml' }, log: silentLogger };
}

export async function buildTestApp(hub: Hub): Promise<FastifyInstance> {
  const app = await buildApp(hub);
  await app.ready();
  return app;
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

export async function seedSource(pool: Pool, name: string, connector = 'csv'): Promise<void> {
  await pool.query('insert into source (name, connector) values ($1, $2)', [name, connector]);
}

/** A raw record and its canonical form (interactions hang off the canonical record). */
export async function seedRecord(
  pool: Pool,
  record: { source: string; stream?: string; externalId: string; canonical?: CanonicalRecord; observedAt?: string },
): Promise<number> {
  const data = { id: record.externalId };
  const { rows } = await pool.query<{ id: string }>(
    'insert into raw_record (source, stream, external_id, data, content_hash) values ($1, $2, $3, $4, $5) returning id',
    [record.source, record.stream ?? 'customers', record.externalId, data, createHash('sha256').update(JSON.stringify(data)).digest('hex')],
  );
  const id = Number(rows[0].id);
  await pool.query('insert into canonical_record (raw_record_id, source, data, observed_at) values ($1, $2, $3, $4)', [
    id,
    record.source,
    record.canonical ?? {},
    record.observedAt ?? '2025-01-01T00:00:00Z',
  ]);
  return id;
}

/** A golden record with the next seq, as the resolver creates them (`cus_<seq>`). */
export async function seedGolden(
  pool: Pool,
  golden: { data?: Record<string, unknown>; status?: 'active' | 'merged' | 'retired'; mergedInto?: string; createdAt?: string; updatedAt?: string } = {},
): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `with next as (select nextval('golden_record_seq') as seq)
     insert into golden_record (id, seq, status, merged_into, data, created_at, updated_at)
     select 'cus_' || seq, seq, $1, $2, $3, coalesce($4::timestamptz, now()), coalesce($5::timestamptz, now()) from next returning id`,
    [golden.status ?? 'active', golden.mergedInto ?? null, golden.data ?? {}, golden.createdAt ?? null, golden.updatedAt ?? null],
  );
  return rows[0].id;
}

export async function seedMembership(
  pool: Pool,
  rawRecordId: number,
  goldenId: string,
  options: { validFrom?: string; validTo?: string; detail?: Record<string, unknown> } = {},
): Promise<void> {
  await pool.query(
    `insert into cluster_membership (raw_record_id, golden_id, valid_from, valid_to, cause, detail)
     values ($1, $2, coalesce($3::timestamptz, now()), $4, 'rule', $5)`,
    [rawRecordId, goldenId, options.validFrom ?? null, options.validTo ?? null, options.detail ?? {}],
  );
}

export async function seedLineage(
  pool: Pool,
  goldenId: string,
  rows: { attribute: string; value: unknown; rawRecordId: number; source: string; observedAt: string; survived: boolean }[],
): Promise<void> {
  for (const row of rows) {
    await pool.query(
      'insert into attribute_lineage (golden_id, attribute, value, raw_record_id, source, observed_at, survived) values ($1, $2, $3, $4, $5, $6, $7)',
      [goldenId, row.attribute, JSON.stringify(row.value), row.rawRecordId, row.source, row.observedAt, row.survived],
    );
  }
}

export async function seedInteraction(pool: Pool, rawRecordId: number, ordinal: number, interaction: { kind: string; occurred_at: string } & Record<string, unknown>): Promise<void> {
  await pool.query('insert into interaction (raw_record_id, ordinal, kind, occurred_at, data) values ($1, $2, $3, $4, $5)', [
    rawRecordId,
    ordinal,
    interaction.kind,
    interaction.occurred_at,
    interaction,
  ]);
}

/** Appends a change at the next position, taking the counter as the change log does. */
export async function seedChange(pool: Pool, change: { goldenId: string; kind: string; changed?: string[]; detail?: Record<string, unknown> }): Promise<number> {
  const { rows } = await pool.query<{ position: string }>('update change_log_counter set position = position + 1 returning position');
  const position = Number(rows[0].position);
  await pool.query(
    `insert into change_log (position, golden_id, kind, changed, detail, cause, cause_id, actor) values ($1, $2, $3, $4, $5, 'run', '1', 'source:shop')`,
    [position, change.goldenId, change.kind, JSON.stringify(change.changed ?? []), change.detail ?? {}],
  );
  return position;
}

export async function seedRun(
  pool: Pool,
  source: string,
  run: { status: 'queued' | 'running' | 'succeeded' | 'failed'; trigger?: string; read?: number; created?: number; error?: string },
): Promise<number> {
  const finished = run.status === 'succeeded' || run.status === 'failed';
  const { rows } = await pool.query<{ id: string }>(
    `insert into sync_run (source, status, trigger, read, created, error, progress, started_at, finished_at)
     values ($1, $2, $3, $4, $5, $6, $7, case when $2 <> 'queued' then now() end, case when $8 then now() end) returning id`,
    [source, run.status, run.trigger ?? 'cli', run.read ?? 0, run.created ?? 0, run.error ?? null, { stream: 'customers', done: run.read ?? 0 }, finished],
  );
  return Number(rows[0].id);
}

export async function seedQuarantine(
  pool: Pool,
  entry: { source: string; stage: 'read' | 'map'; reason: string; rawRecordId?: number; runId?: number; line?: number; field?: string; resolved?: boolean },
): Promise<number> {
  const { rows } = await pool.query<{ id: string }>(
    `insert into quarantine (source, stream, external_id, line, field, reason, stage, payload, raw_record_id, run_id, resolved_at)
     values ($1, 'customers', $2, $3, $4, $5, $6, $7, $8, $9, case when $10 then now() end) returning id`,
    [entry.source, entry.rawRecordId ? `ext-${entry.rawRecordId}` : null, entry.line ?? null, entry.field ?? null, entry.reason, entry.stage, { raw: entry.reason }, entry.rawRecordId ?? null, entry.runId ?? null, entry.resolved ?? false],
  );
  return Number(rows[0].id);
}
