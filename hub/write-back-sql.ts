/** The SQL of write-back (hub/write-back.ts), as named statements. */
import type { Statement } from './db/database.js';

export function ensureState(source: string): Statement {
  return { text: 'insert into write_back_state (source) values ($1) on conflict do nothing', values: [source] };
}

/** The source's row, locked until commit: one planner per source at a time, across processes. */
export function lockState(source: string): Statement {
  return { text: 'select position, enabled from write_back_state where source = $1 for update', values: [source] };
}

export function getState(source: string): Statement {
  return { text: 'select position, enabled, enabled_changed_by, enabled_changed_at from write_back_state where source = $1', values: [source] };
}

export function setPosition(source: string, position: number): Statement {
  return { text: 'update write_back_state set position = greatest(position, $2) where source = $1', values: [source, position] };
}

/** Back to `position` (not forward): what was planned after it is planned again. */
export function rewindPosition(source: string, position: number): Statement {
  return { text: 'update write_back_state set position = least(position, $2) where source = $1', values: [source, position] };
}

export function setEnabled(source: string, enabled: boolean | null, actor: string): Statement {
  return {
    text: `insert into write_back_state (source, enabled, enabled_changed_by, enabled_changed_at) values ($1, $2, $3, now())
           on conflict (source) do update set enabled = excluded.enabled, enabled_changed_by = excluded.enabled_changed_by, enabled_changed_at = now()`,
    values: [source, enabled, actor],
  };
}

/**
 * Golden records changed after `position`, oldest change first, at most `limit`; each with its last position.
 * A golden record whose last change is beyond the batch is taken by the next batch.
 */
export function changedGoldens(position: number, limit: number): Statement {
  return {
    text: `select golden_id, max(position) as position from change_log where position > $1
           group by golden_id order by max(position) limit $2`,
    values: [position, limit],
  };
}

export function lastChangePosition(): Statement {
  return { text: 'select coalesce(max(position), 0) as position from change_log', values: [] };
}

/** The current members of `source`'s stream in active golden records, chosen by golden id or by record id. */
export function members(source: string, stream: string, by: { goldenIds?: string[]; rawRecordIds?: number[] }): Statement {
  return {
    text: `select g.id as golden_id, g.data as golden, r.id as raw_record_id, r.external_id, r.changed_at, c.data as canonical
           from cluster_membership m
           join golden_record g on g.id = m.golden_id and g.status = 'active'
           join raw_record r on r.id = m.raw_record_id and r.source = $1 and r.stream = $2 and r.deleted_at is null
           join canonical_record c on c.raw_record_id = r.id
           where m.valid_to is null
             and ($3::text[] is null or m.golden_id = any($3::text[]))
             and ($4::bigint[] is null or m.raw_record_id = any($4::bigint[]))
           order by g.seq, r.id`,
    values: [source, stream, by.goldenIds ?? null, by.rawRecordIds ?? null],
  };
}

export function echoes(source: string, externalIds: string[]): Statement {
  return {
    text: 'select external_id, attribute, value_hash, written_at from write_back_echo where source = $1 and external_id = any($2::text[])',
    values: [source, externalIds],
  };
}

export function rememberWrites(source: string, externalId: string, hashes: { attribute: string; hash: string }[]): Statement {
  return {
    text: `insert into write_back_echo (source, external_id, attribute, value_hash)
           select $1, $2, a, h from unnest($3::text[], $4::text[]) as t (a, h)
           on conflict (source, external_id, attribute) do update set value_hash = excluded.value_hash, written_at = now()`,
    values: [source, externalId, hashes.map((entry) => entry.attribute), hashes.map((entry) => entry.hash)],
  };
}

export function insertLog(entry: {
  source: string;
  externalId: string;
  goldenId: string;
  jobId: string | null;
  request: unknown;
  outcome: 'ok' | 'error';
  error: string | null;
  response: unknown;
}): Statement {
  return {
    text: `insert into write_back_log (source, external_id, golden_id, job_id, request, outcome, error, response)
           values ($1, $2, $3, $4, $5, $6, $7, $8) returning id`,
    values: [entry.source, entry.externalId, entry.goldenId, entry.jobId, JSON.stringify(entry.request), entry.outcome, entry.error, JSON.stringify(entry.response ?? null)],
  };
}

export function recentLog(source: string, limit: number): Statement {
  return {
    text: `select id, external_id, golden_id, request, outcome, error, written_at from write_back_log
           where source = $1 order by id desc limit $2`,
    values: [source, limit],
  };
}
