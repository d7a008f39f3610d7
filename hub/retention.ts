/**
 * Retention: what the hub keeps, and for how long. The worker's hourly housekeeping (hub/webhooks.ts) calls
 * `enforceRetention`; several workers may run it at once (each step is an idempotent delete). Every period is
 * in days and configurable through the environment; the README's "Operating the hub" lists them.
 */
import type { Pool } from './db/database.js';
import { CHANGE_RETENTION_DAYS, pruneChangeLog } from './change-feed.js';

function days(name: string, fallback: number, minimum = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < minimum) throw new Error(`${name} must be a number of days ≥ ${minimum}; got '${raw}'.`);
  return value;
}

export interface RetentionSettings {
  /** Finished sync runs older than this are deleted, except the last finished run of each source and runs records still point to. */
  runDays: number;
  /** Quarantine entries resolved (loaded after all) longer ago than this are deleted; open entries are kept until resolved. */
  resolvedQuarantineDays: number;
  /** Jobs in pg-boss's archive (completed, failed, expired) older than this are deleted. */
  jobArchiveDays: number;
  /** Changes older than this leave the change log (never one an active webhook subscription has yet to deliver). */
  changeLogDays: number;
}

export function retentionSettings(): RetentionSettings {
  return {
    runDays: days('HUB_RUN_RETENTION_DAYS', 90),
    resolvedQuarantineDays: days('HUB_QUARANTINE_RETENTION_DAYS', 30),
    // pg-boss's own maintenance deletes archived jobs after whole days (at least one): see hub/queue.ts.
    jobArchiveDays: days('HUB_JOB_ARCHIVE_RETENTION_DAYS', 7, 1),
    changeLogDays: CHANGE_RETENTION_DAYS,
  };
}

export interface RetentionResult {
  runs: number;
  resolvedQuarantine: number;
  archivedJobs: number;
  changes: number;
}

/** Deletes finished runs older than `olderThanDays`, keeping each source's last finished run and runs a record or open quarantine entry names. */
export async function pruneRuns(pool: Pool, olderThanDays: number): Promise<number> {
  const { rowCount } = await pool.query({
    text: `with candidate as (
             select r.id from sync_run r
             where r.status in ('succeeded', 'failed') and r.finished_at < now() - make_interval(secs => $1 * 86400)
               and r.id <> (select max(l.id) from sync_run l where l.source = r.source and l.status in ('succeeded', 'failed'))
           ), referenced as (
             select last_run_id as id from raw_record where last_run_id in (select id from candidate)
             union select run_id from quarantine where run_id in (select id from candidate)
           )
           delete from sync_run where id in (select id from candidate except select id from referenced)`,
    values: [olderThanDays],
  });
  return rowCount ?? 0;
}

export async function pruneResolvedQuarantine(pool: Pool, olderThanDays: number): Promise<number> {
  const { rowCount } = await pool.query({
    text: 'delete from quarantine where resolved_at < now() - make_interval(secs => $1 * 86400)',
    values: [olderThanDays],
  });
  return rowCount ?? 0;
}

/** pg-boss's archive, when pg-boss has created it in this database. */
export async function pruneJobArchive(pool: Pool, olderThanDays: number): Promise<number> {
  const { rows } = await pool.query<{ present: boolean }>("select to_regclass('pgboss.archive') is not null as present");
  if (!rows[0].present) return 0;
  const { rowCount } = await pool.query({
    text: 'delete from pgboss.archive where archived_on < now() - make_interval(secs => $1 * 86400)',
    values: [olderThanDays],
  });
  return rowCount ?? 0;
}

/** Applies every retention period. Resolved quarantine goes first, so that the runs only it named can go too. */
export async function enforceRetention(pool: Pool, settings: RetentionSettings = retentionSettings()): Promise<RetentionResult> {
  const resolvedQuarantine = await pruneResolvedQuarantine(pool, settings.resolvedQuarantineDays);
  const runs = await pruneRuns(pool, settings.runDays);
  const archivedJobs = await pruneJobArchive(pool, settings.jobArchiveDays);
  const { deleted: changes } = await pruneChangeLog(pool, settings.changeLogDays);
  return { runs, resolvedQuarantine, archivedJobs, changes };
}
