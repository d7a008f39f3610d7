/** The hub runtime's SQL (sources, runs, raw and canonical records, quarantine), as named statements. */
import type { Statement } from './db/database.js';
import type { Counts } from './ingest.js';
import { blockKeyCtes } from '../identity-resolution/sql.js';

export const upsertSource = (name: string, connector: string, schedule: string | null): Statement => ({
  text: `insert into source (name, connector, schedule) values ($1, $2, $3)
         on conflict (name) do update set connector = excluded.connector, schedule = excluded.schedule, removed_at = null`,
  values: [name, connector, schedule],
});

export const listSources = (): Statement => ({
  text: `select s.name, s.connector, s.schedule, s.created_at,
           (select row_to_json(r) from (select id, status, trigger, queued_at, started_at, finished_at, read, created, updated, unchanged, quarantined, error
              from sync_run where source = s.name order by id desc limit 1) r) as last_run,
           (select count(*) from raw_record where source = s.name)::int as records,
           (select count(*) from quarantine where source = s.name and resolved_at is null)::int as quarantined,
           (select count(*) from canonical_record where source = s.name and omitted is not null)::int as omitted
         from source s where s.removed_at is null order by s.name`,
  values: [],
});

/** Queues a run unless the source has one queued or running; then that one is returned. */
export const queueRun = (source: string, trigger: string, scheduledFor: Date | null): Statement => ({
  text: `with inserted as (
           insert into sync_run (source, trigger, scheduled_for) values ($1, $2, $3)
           on conflict do nothing returning id, true as queued)
         select id, queued from inserted
         union all
         select id, false from sync_run where source = $1 and status in ('queued', 'running') and not exists (select 1 from inserted)
         limit 1`,
  values: [source, trigger, scheduledFor],
});

const RUN_COLUMNS = `id, source, status, trigger, scheduled_for, read, created, updated, unchanged, quarantined, skipped, deleted, with_omitted_values, progress, error,
  queued_at, started_at, finished_at`;

export const getRun = (id: number): Statement => ({
  text: `select ${RUN_COLUMNS} from sync_run where id = $1`,
  values: [id],
});

/** The latest runs of a source, newest first. */
export const recentRunsOfSource = (source: string, limit: number): Statement => ({
  text: `select ${RUN_COLUMNS} from sync_run where source = $1 order by id desc limit $2`,
  values: [source, limit],
});

export const startRun = (id: number): Statement => ({
  text: "update sync_run set status = 'running', started_at = coalesce(started_at, now()) where id = $1 and status in ('queued', 'running') returning id",
  values: [id],
});

export const requeueRun = (id: number): Statement => ({
  text: "update sync_run set status = 'queued' where id = $1 and status = 'running'",
  values: [id],
});

/** Candidates for recovery; executeRun's lock tells the orphans from the runs that live processes execute. */
export const interruptedRuns = (staleQueuedSeconds: number): Statement => ({
  text: `select id from sync_run
         where status = 'running' or (status = 'queued' and queued_at < now() - make_interval(secs => $1))
         order by id`,
  values: [staleQueuedSeconds],
});

const RUN_LOCK = 7_301_003;
export const tryLockRun = (id: number): Statement => ({ text: 'select pg_try_advisory_lock($1, $2) as locked', values: [RUN_LOCK, id] });
export const unlockRun = (id: number): Statement => ({ text: 'select pg_advisory_unlock($1, $2)', values: [RUN_LOCK, id] });

export const finishRun = (id: number, status: 'succeeded' | 'failed', error: string | null): Statement => ({
  text: 'update sync_run set status = $2, error = $3, finished_at = now() where id = $1',
  values: [id, status, error],
});

export const addRunCounts = (id: number, counts: Counts, progress: unknown): Statement => ({
  text: `update sync_run set read = read + $2, created = created + $3, updated = updated + $4, unchanged = unchanged + $5,
           quarantined = quarantined + $6, progress = $7, skipped = skipped + $8, with_omitted_values = with_omitted_values + $9 where id = $1`,
  values: [id, counts.read, counts.created, counts.updated, counts.unchanged, counts.quarantined, JSON.stringify(progress ?? {}), counts.skipped ?? 0, counts.withOmittedValues ?? 0],
});

export const getStreamState = (source: string, stream: string): Statement => ({
  text: 'select state from stream_state where source = $1 and stream = $2',
  values: [source, stream],
});

/** Saves the checkpoint; on the first page of a full sweep also notes when the sweep began. */
export const saveStreamState = (source: string, stream: string, state: unknown, sweepStart = false): Statement => ({
  text: `insert into stream_state (source, stream, state, sweep_started_at) values ($1, $2, $3, case when $4 then now() end)
         on conflict (source, stream) do update set state = excluded.state, updated_at = now(),
           sweep_started_at = case when $4 then now() else stream_state.sweep_started_at end`,
  values: [source, stream, JSON.stringify(state), sweepStart],
});

/** At the end of a full sweep: the stream's records not seen since it began were deleted at the source. */
export const markUnseenDeleted = (source: string, stream: string): Statement => ({
  text: `update raw_record r set deleted_at = now() from stream_state s
         where s.source = $1 and s.stream = $2 and s.sweep_started_at is not null
           and r.source = $1 and r.stream = $2 and r.deleted_at is null and r.last_seen_at < s.sweep_started_at
         returning r.id`,
  values: [source, stream],
});

/** Records the source reported deleted (RecordPage.deleted) that are not marked so yet. */
export const markReportedDeleted = (source: string, stream: string, externalIds: string[]): Statement => ({
  text: 'update raw_record set deleted_at = now() where source = $1 and stream = $2 and external_id = any($3::text[]) and deleted_at is null returning id',
  values: [source, stream, externalIds],
});

export const endSweep = (source: string, stream: string): Statement => ({
  text: 'update stream_state set sweep_started_at = null where source = $1 and stream = $2',
  values: [source, stream],
});

export const addDeletedCount = (id: number, deleted: number): Statement => ({
  text: 'update sync_run set deleted = deleted + $2 where id = $1',
  values: [id, deleted],
});

/**
 * What the save boundary knows of a page's records, in one round trip: `stored` rows, those of `externalIds` stored
 * before; `tombstoned` rows, those whose key or content an erasure tombstoned (their hashes, in the order of
 * `externalIds`: hub/privacy.ts tombstoneKeys), which are not stored again.
 */
export const knownRawRecords = (source: string, stream: string, externalIds: string[], tombstones: { recordKeys: string[]; contentKeys: string[] }): Statement => ({
  text: `select 'stored' as tag, id, external_id, content_hash, deleted_at from raw_record where source = $1 and stream = $2 and external_id = any($3::text[])
         union all
         select 'tombstoned', null, t.external_id, null, null from unnest($3::text[], $4::text[], $5::text[]) as t(external_id, record_key, content_key)
         where exists (select 1 from erasure_tombstone e where (e.kind = 'record' and e.key_hash = t.record_key) or (e.kind = 'content' and e.key_hash = t.content_key))`,
  name: 'hub_known_raw_records',
  values: [source, stream, externalIds, tombstones.recordKeys, tombstones.contentKeys],
});

export const insertRawRecords = (source: string, stream: string, runId: number | null, rows: { externalId: string; data: unknown; hash: string }[]): Statement => ({
  text: `insert into raw_record (source, stream, external_id, data, content_hash, last_run_id)
         select $1, $2, external_id, data, hash, $3 from unnest($4::text[], $5::jsonb[], $6::text[]) as t(external_id, data, hash)
         returning id, external_id, changed_at`,
  name: 'hub_insert_raw_records',
  values: [source, stream, runId, rows.map((row) => row.externalId), rows.map((row) => JSON.stringify(row.data)), rows.map((row) => row.hash)],
});

export const updateRawRecords = (runId: number | null, rows: { id: number; data: unknown; hash: string }[]): Statement => ({
  text: `update raw_record r set data = t.data, content_hash = t.hash, changed_at = now(), last_seen_at = now(), last_run_id = $1, deleted_at = null
         from unnest($2::bigint[], $3::jsonb[], $4::text[]) as t(id, data, hash) where r.id = t.id
         returning r.id, r.changed_at`,
  values: [runId, rows.map((row) => row.id), rows.map((row) => JSON.stringify(row.data)), rows.map((row) => row.hash)],
});

export const touchRawRecords = (runId: number | null, ids: number[]): Statement => ({
  text: 'update raw_record set last_seen_at = now(), last_run_id = $1 where id = any($2::bigint[])',
  values: [runId, ids],
});

/** Records an id sweep found still there (RecordPage.present); those already marked deleted stay so until read again. */
export const touchPresentRecords = (source: string, stream: string, runId: number | null, externalIds: string[]): Statement => ({
  text: 'update raw_record set last_seen_at = now(), last_run_id = $3 where source = $1 and stream = $2 and external_id = any($4::text[]) and deleted_at is null',
  values: [source, stream, runId, externalIds],
});

export const rawRecordsForMapping = (ids: number[]): Statement => ({
  text: 'select id, source, stream, external_id, data, changed_at from raw_record where id = any($1::bigint[]) order by id',
  values: [ids],
});

export const rawRecordIdsOfSource = (source: string, afterId: number, limit: number): Statement => ({
  text: 'select id from raw_record where source = $1 and id > $2 order by id limit $3',
  values: [source, afterId, limit],
});

export const canonicalOf = (ids: number[]): Statement => ({
  text: 'select raw_record_id as id, data, observed_at, omitted from canonical_record where raw_record_id = any($1::bigint[])',
  name: 'hub_canonical_of',
  values: [ids],
});

/**
 * Writes the canonical form of mapped records (with the values their mapping omitted; none: null) with their match keys
 * (`keys`, none stored: the caller deleted those of records mapped before) and blocking keys (`blockKeys`, replacing
 * theirs; identity-resolution/sql.ts blockKeyCtes), in one round trip. The keys have no foreign key: written with their
 * canonical form, they go with it (migration 0020).
 */
export const writeCanonical = (
  rows: { id: number; source: string; data: unknown; observedAt: Date; omitted: unknown[] }[],
  keys: { id: number; kind: string; value: string; verified: boolean }[],
  blockKeys: { id: number; key: string }[],
): Statement => ({
  text: `with canonical as (
           insert into canonical_record (raw_record_id, source, data, observed_at, omitted)
           select * from unnest($1::bigint[], $2::text[], $3::jsonb[], $4::timestamptz[], $11::jsonb[])
           on conflict (raw_record_id) do update set data = excluded.data, observed_at = excluded.observed_at, omitted = excluded.omitted, mapped_at = now()
           returning 1),
         match_keys as (
           insert into match_key (raw_record_id, kind, value, verified) select * from unnest($5::bigint[], $6::text[], $7::text[], $8::boolean[])
           returning 1),
         ${blockKeyCtes('$9', '$10', '$1')}
         select (select count(*) from canonical) + (select count(*) from match_keys) + (select count(*) from written_block_keys) as written`,
  name: 'hub_write_canonical',
  values: [
    rows.map((row) => row.id),
    rows.map((row) => row.source),
    rows.map((row) => JSON.stringify(row.data)),
    rows.map((row) => row.observedAt),
    keys.map((key) => key.id),
    keys.map((key) => key.kind),
    keys.map((key) => key.value),
    keys.map((key) => key.verified),
    blockKeys.map((key) => key.id),
    blockKeys.map((key) => key.key),
    rows.map((row) => (row.omitted.length ? JSON.stringify(row.omitted) : null)),
  ],
});

export const deleteCanonical = (ids: number[]): Statement => ({
  text: 'delete from canonical_record where raw_record_id = any($1::bigint[])',
  values: [ids],
});

export const deleteMatchKeys = (ids: number[]): Statement => ({
  text: 'delete from match_key where raw_record_id = any($1::bigint[])',
  values: [ids],
});

export const deleteInteractions = (ids: number[]): Statement => ({
  text: 'delete from interaction where raw_record_id = any($1::bigint[])',
  values: [ids],
});

export const insertInteractions = (rows: { id: number; ordinal: number; kind: string; occurredAt: string; data: unknown }[]): Statement => ({
  text: `insert into interaction (raw_record_id, ordinal, kind, occurred_at, data)
         select * from unnest($1::bigint[], $2::int[], $3::text[], $4::timestamptz[], $5::jsonb[])`,
  values: [rows.map((row) => row.id), rows.map((row) => row.ordinal), rows.map((row) => row.kind), rows.map((row) => row.occurredAt), rows.map((row) => JSON.stringify(row.data))],
});

export interface QuarantineRow {
  source: string;
  stream: string;
  externalId: string | null;
  line: number | null;
  field: string | null;
  reason: string;
  stage: 'read' | 'map';
  payload: unknown;
  rawRecordId: number | null;
  runId: number | null;
}

const quarantineRows = (rows: QuarantineRow[]) => ({
  text: `select * from unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::bigint[], $10::bigint[])
         as t(source, stream, external_id, line, field, reason, stage, payload, raw_record_id, run_id)`,
  values: [
    rows.map((row) => row.source),
    rows.map((row) => row.stream),
    rows.map((row) => row.externalId),
    rows.map((row) => row.line),
    rows.map((row) => row.field),
    rows.map((row) => row.reason),
    rows.map((row) => row.stage),
    rows.map((row) => JSON.stringify(row.payload ?? null)),
    rows.map((row) => row.rawRecordId),
    rows.map((row) => row.runId),
  ],
});

const quarantineColumns = 'source, stream, external_id, line, field, reason, stage, payload, raw_record_id, run_id';

export const insertQuarantine = (rows: QuarantineRow[]): Statement => {
  const select = quarantineRows(rows);
  return { text: `insert into quarantine (${quarantineColumns}) ${select.text}`, values: select.values };
};

/** Read rejections already open with the same place and reason are not quarantined twice (a file read again). */
export const insertNewReadRejections = (rows: QuarantineRow[]): Statement => {
  const select = quarantineRows(rows);
  return {
    text: `insert into quarantine (${quarantineColumns})
           select ${quarantineColumns} from (${select.text}) as t
           where not exists (select 1 from quarantine q where q.resolved_at is null and q.source = t.source and q.stream = t.stream
             and q.stage = 'read' and q.reason = t.reason and q.payload = t.payload
             and q.line is not distinct from t.line and q.external_id is not distinct from t.external_id)
           returning id`,
    values: select.values,
  };
};

export const quarantineEntry = (id: number): Statement => ({
  text: 'select source, raw_record_id, resolved_at from quarantine where id = $1',
  values: [id],
});

/** Waits for a sync page or a requeue that is storing this record (they hold the row lock), and keeps the next one waiting. */
export const lockRawRecord = (id: number): Statement => ({
  text: 'select id from raw_record where id = $1 for update',
  values: [id],
});

export const openQuarantineOfRecord = (rawRecordId: number): Statement => ({
  text: 'select reason from quarantine where raw_record_id = $1 and resolved_at is null',
  values: [rawRecordId],
});

/** A record that maps again closes its open quarantine entry; so does a record that is quarantined anew. */
export const resolveQuarantine = (rawRecordIds: number[]): Statement => ({
  text: 'update quarantine set resolved_at = now() where resolved_at is null and raw_record_id = any($1::bigint[])',
  values: [rawRecordIds],
});
